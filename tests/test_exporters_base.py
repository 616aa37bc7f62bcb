"""A user-written exporter plugged in through configure(exporters=[...]) and tradetel.exporters.base."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

import tradetel
from tradetel import ConfigurationError
from tradetel.exporters.base import ExporterHooks, ExportFailure, PushExporter


class Recording:
    """An exporter that keeps every collection it is given, or fails with ``reason`` when told to."""

    def __init__(self, name: str = "recording", fail: str | None = None) -> None:
        self.name = name
        self.failure_reasons = (fail,) if fail else ()
        self.fail = fail
        self.exports: list[MetricsData] = []
        self.shutdowns = 0

    def export(self, data: MetricsData, timeout: float) -> None:
        self.exports.append(data)
        if self.fail:
            raise ExportFailure([self.fail], "told to fail")

    def shutdown(self, timeout: float) -> None:
        self.shutdowns += 1


def _points(data: MetricsData, metric: str) -> list[tuple[dict[str, Any], Any]]:
    return [
        (dict(point.attributes or {}), point.value)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for m in scope.metrics
        if m.name == metric
        for point in m.data.data_points
    ]


def _configure(*exporters: object, **settings: Any) -> tradetel.Telemetry:
    return tradetel.configure(exporters=list(exporters), env={}, runtime_metrics=False, **settings)


def test_exporter_object_receives_what_was_recorded() -> None:
    """An exporter object alone gets the same cumulative points as collect() on each flush, and one shutdown."""
    exporter = Recording()
    tel = _configure(exporter)
    try:
        assert tel.settings.exporters == ()  # no built-in backend: the object replaces the default prometheus
        tel.orders.filled.add(3, exchange="binance", symbol="BTC-USD", side="buy")
        tel.force_flush()
        sent = _points(exporter.exports[-1], "trading.orders.filled")
        assert sent == [({"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}, 3)]
        assert sent == _points(tel.collect(), "trading.orders.filled")
    finally:
        tel.shutdown()
    assert exporter.shutdowns == 1
    assert _points(exporter.exports[-1], "trading.orders.filled")[0][1] == 3  # the final flush


def test_export_failure_reasons_are_counted_by_exporter_name() -> None:
    """ExportFailure from a custom exporter is counted under its name and reason, from 0 at configure()."""
    exporter = Recording("flaky", fail="quota")
    with _configure(exporter) as tel:
        failures = "tradetel.export.failures"
        assert ({"exporter": "flaky", "reason": "quota"}, 0) in _points(tel.collect(), failures)
        tel.force_flush()
        tel.force_flush()
        assert ({"exporter": "flaky", "reason": "quota"}, 2) in _points(tel.collect(), failures)


def test_names_and_objects_mix(capsys: pytest.CaptureFixture[str]) -> None:
    """A built-in name and an object in one list both export the same collection."""
    exporter = Recording()
    with _configure("console", exporter) as tel:
        assert tel.settings.exporters == ("console",)
        tel.account.equity.set(10_250.0, account="main")
        tel.force_flush()
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert printed and exporter.exports
    assert _points(exporter.exports[0], "trading.account.equity") == [({"account": "main"}, 10_250.0)]
    assert "trading.account.equity" in json.dumps(printed[0])


@pytest.mark.parametrize("bad", [object(), "nope", 42])
def test_unusable_exporter_raises_configuration_error(bad: object) -> None:
    """Something that is neither a backend name nor an exporter object raises ConfigurationError naming `exporters`."""
    with pytest.raises(ConfigurationError, match=r"^exporters="):
        _configure(bad, Recording())


def test_error_names_the_accepted_forms() -> None:
    """An object without export/shutdown is refused with the accepted forms spelled out, not echoed."""
    with pytest.raises(ConfigurationError) as raised:
        _configure(object())
    assert raised.value.setting == "exporters"
    assert "export(data, timeout)" in raised.value.accepted and raised.value.value == "object"


def test_exporter_names_must_be_distinct() -> None:
    """Two exporters with one name would share failure counters; configure() refuses them."""
    with pytest.raises(ConfigurationError, match="distinct names"):
        _configure(Recording("twin"), Recording("twin"))
    with pytest.raises(ConfigurationError, match="distinct names"):
        _configure("console", Recording("console"))


def test_disabled_sdk_starts_no_custom_exporter() -> None:
    """With OTEL_SDK_DISABLED=true a custom exporter is never called, like the built-in ones."""
    exporter = Recording()
    tel = tradetel.configure(exporters=[exporter], env={"OTEL_SDK_DISABLED": "true"}, runtime_metrics=False)
    tel.orders.filled.add(1)
    tel.force_flush()
    tel.shutdown()
    assert exporter.exports == [] and exporter.shutdowns == 0


def test_protocols_describe_the_built_in_exporters() -> None:
    """The built-in OTLP exporter is a PushExporter with every optional hook, and a plain one has none."""
    from tradetel.config import OtlpSettings
    from tradetel.exporters.otlp import OtlpExporter

    otlp = OtlpExporter(OtlpSettings())
    try:
        checked: PushExporter = otlp
        assert isinstance(checked, ExporterHooks)
        assert not isinstance(Recording(), ExporterHooks)
    finally:
        otlp.shutdown(1.0)
