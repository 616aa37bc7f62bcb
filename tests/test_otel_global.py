"""tradetel's MeterProvider as the global OpenTelemetry one: what instrumentations record reaches every exporter."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
)
from prometheus_client.parser import text_string_to_metric_families

import tradetel
from tradetel.errors import ConfigurationError
from tradetel.exporters.dogstatsd import DogStatsdSerializer
from tradetel.exporters.otlp import TemporalityConverter
from tradetel.exporters.prometheus import render
from tradetel.otel_global import install_global_meter_provider, installed_telemetry

SCOPE = "opentelemetry.instrumentation.example"


def _record_everything(meter: metrics.Meter, rounds: int) -> None:
    """What instrumentation packages do: each instrument kind, several attribute sets."""
    requests = meter.create_counter("http.server.requests", unit="{request}", description="Requests.")
    active = meter.create_up_down_counter("http.server.active_requests", unit="{request}")
    duration = meter.create_histogram(
        "http.server.request.duration", unit="s", explicit_bucket_boundaries_advisory=[0.01, 0.1, 1.0]
    )
    size = meter.create_histogram("http.server.response.size", unit="By")
    temperature = meter.create_gauge("device.temperature", unit="Cel")

    def cpu(options: CallbackOptions) -> list[Observation]:
        return [Observation(12.5, {"cpu": "0"}), Observation(7, {"cpu": "1"})]

    def threads(options: CallbackOptions) -> list[Observation]:
        return [Observation(9)]

    def memory(options: CallbackOptions) -> list[Observation]:
        return [Observation(2_048_000, {"type": "rss"})]

    meter.create_observable_counter("process.cpu.time", [cpu], unit="s")
    meter.create_observable_up_down_counter("process.thread.count", [threads], unit="{thread}")
    meter.create_observable_gauge("process.memory.usage", [memory], unit="By")
    for index in range(rounds):
        method = ("GET", "POST")[index % 2]
        requests.add(1, {"http.request.method": method, "http.response.status_code": 200})
        active.add(1, {"http.request.method": method})
        active.add(-1, {"http.request.method": method})
        duration.record(0.003 * (index + 1), {"http.request.method": method})
        size.record(100 + index, {"http.request.method": method})
        temperature.set(20 + index, {"sensor": "a"})


def _points(data: MetricsData, scope: str) -> dict[str, Any]:
    """Metric name → {attributes: value or (count, sum, buckets, bounds)} for one instrumentation scope."""
    out: dict[str, Any] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != scope:
                continue
            for metric in scope_metrics.metrics:
                series = out.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    key = tuple(sorted((point.attributes or {}).items()))
                    if isinstance(point, HistogramDataPoint):
                        bounds = tuple(point.explicit_bounds)
                        series[key] = (point.count, point.sum, tuple(point.bucket_counts), bounds)
                    else:
                        assert isinstance(point, NumberDataPoint)
                        series[key] = point.value
    return out


@pytest.fixture
def tel() -> Iterator[tradetel.Telemetry]:
    with tradetel.configure(exporters="none", env={}, set_global_meter_provider=True) as telemetry:
        yield telemetry


def test_global_instruments_match_a_plain_sdk_provider(tel: tradetel.Telemetry) -> None:
    """Every instrument kind recorded through the global API gives the values a stock SDK provider gives."""
    reference_reader = InMemoryMetricReader()
    reference = MeterProvider(metric_readers=[reference_reader])
    _record_everything(metrics.get_meter(SCOPE, "1.0"), rounds=7)
    _record_everything(reference.get_meter(SCOPE, "1.0"), rounds=7)
    expected = _points(reference_reader.get_metrics_data(), SCOPE)
    got = _points(tel.collect(), SCOPE)
    reference.shutdown()
    assert len(expected) == 8
    assert got == expected
    assert got["http.server.request.duration"][(("http.request.method", "GET"),)][3] == (0.01, 0.1, 1.0)


def test_meters_with_list_attributes_are_served(tel: tradetel.Telemetry) -> None:
    """A meter asked for with attribute values that are lists (allowed by the API) records like any other."""
    meter = metrics.get_meter(SCOPE, attributes={"tags": ["a", "b"]})
    assert metrics.get_meter(SCOPE, attributes={"tags": ["a", "b"]}) is meter
    meter.create_counter("tagged").add(3)
    assert _points(tel.collect(), SCOPE)["tagged"] == {(): 3}


def test_instruments_created_before_configure_are_carried_over() -> None:
    """An instrumentation that made its instruments at import, before configure(), records into tradetel."""
    early = metrics.get_meter(SCOPE).create_counter("early.requests")
    early.add(5)  # no provider yet: dropped, as OpenTelemetry drops it
    with tradetel.configure(exporters="none", env={}, set_global_meter_provider=True) as telemetry:
        early.add(2, {"route": "/"})
        assert _points(telemetry.collect(), SCOPE)["early.requests"] == {(("route", "/"),): 2}


def test_every_exporter_handles_instruments_outside_the_catalog(tel: tradetel.Telemetry) -> None:
    """Prometheus text, the OTLP delta converter and DogStatsD lines carry the instrumentation's series."""
    _record_everything(metrics.get_meter(SCOPE), rounds=4)
    data = tel.collect()
    families = {f.name: f for f in text_string_to_metric_families(render(data).decode())}
    duration = families["http_server_request_duration_seconds"]
    assert duration.type == "histogram"
    counts = {s.labels["http_request_method"]: s.value for s in duration.samples if s.name.endswith("_count")}
    assert counts == {"GET": 2, "POST": 2}
    assert families["process_cpu_time_seconds"].type == "counter"
    assert {s.value for s in families["process_cpu_time_seconds"].samples} == {12.5, 7}
    assert families["process_memory_usage_bytes"].samples[0].value == 2_048_000
    assert families["device_temperature_celsius"].samples[0].value == 23

    converted = TemporalityConverter("delta").convert(data)
    delta = _points(converted, SCOPE)
    assert delta["http.server.requests"] == {
        (("http.request.method", method), ("http.response.status_code", 200)): 2 for method in ("GET", "POST")
    }
    assert delta["process.cpu.time"] == {(("cpu", "0"),): 12.5, (("cpu", "1"),): 7}

    lines = DogStatsdSerializer().lines(data)
    tags = "http.request.method:GET,http.response.status_code:200,service:trading-bot"
    assert f"http.server.requests:2|c|#{tags}" in lines
    assert "process.thread.count:9|g|#service:trading-bot" in lines
    assert "http.server.request.duration.count:2|c|#http.request.method:POST,service:trading-bot" in lines


def test_series_limit_bounds_instruments_outside_the_catalog() -> None:
    """cardinality_limit caps an instrumentation's series; the overflow series keeps the total exact."""
    with tradetel.configure(exporters="none", env={}, set_global_meter_provider=True, cardinality_limit=5) as tel:
        counter = metrics.get_meter(SCOPE).create_counter("http.client.requests")
        for index in range(40):
            counter.add(1, {"url.full": f"https://example.test/{index}"})
        series = _points(tel.collect(), SCOPE)["http.client.requests"]
    assert len(series) == 5 + 1
    assert series[(("otel.metric.overflow", True),)] == 40 - 5
    assert sum(series.values()) == 40


def test_default_exponential_histogram_setting_does_not_reach_tradetel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OTLP exporter's exponential-histogram preference leaves tradetel's shared collection explicit-bucket."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "base2_exponential_bucket_histogram")
    with tradetel.configure(exporters="none", set_global_meter_provider=True) as tel:
        metrics.get_meter(SCOPE).create_histogram("rpc.duration", unit="ms").record(3.0)
        found: list[Metric] = [
            metric
            for resource_metrics in tel.collect().resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
            if metric.name == "rpc.duration"
        ]
    assert len(found) == 1 and isinstance(found[0].data, Histogram)


def test_a_second_configure_takes_the_global_over(caplog: pytest.LogCaptureFixture) -> None:
    """The Telemetry installed last receives the measurements; the earlier one stops receiving them."""
    caplog.set_level(logging.INFO, logger="tradetel")
    counter = metrics.get_meter(SCOPE).create_counter("jobs")
    with tradetel.configure(exporters="none", env={}, set_global_meter_provider=True) as first:
        counter.add(1)
        with tradetel.configure(exporters="none", env={}, set_global_meter_provider=True) as second:
            counter.add(10)
            assert installed_telemetry() is second
            assert _points(second.collect(), SCOPE)["jobs"] == {(): 10}
            assert _points(first.collect(), SCOPE)["jobs"] == {(): 1}
        assert installed_telemetry() is None
        counter.add(100)  # nothing is installed: dropped, as before any configure()
        assert _points(first.collect(), SCOPE)["jobs"] == {(): 1}
    assert any("moved from" in record.getMessage() for record in caplog.records)
    with tradetel.configure(exporters="none", env={}, set_global_meter_provider=True) as third:
        counter.add(1000)
        assert _points(third.collect(), SCOPE)["jobs"] == {(): 1000}


def test_without_the_opt_in_the_global_is_left_alone() -> None:
    """configure() alone never touches the global MeterProvider."""
    with tradetel.configure(exporters="none", env={}) as tel:
        metrics.get_meter(SCOPE).create_counter("untouched").add(1)
        assert "untouched" not in _points(tel.collect(), SCOPE)
    assert type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"


def test_setting_is_read_from_the_environment() -> None:
    """TRADETEL_SET_GLOBAL_METER_PROVIDER=true installs; a bad value names the variable and the accepted forms."""
    with tradetel.configure(exporters="none", env={"TRADETEL_SET_GLOBAL_METER_PROVIDER": "true"}) as tel:
        assert installed_telemetry() is tel
    with pytest.raises(ConfigurationError, match=r"TRADETEL_SET_GLOBAL_METER_PROVIDER.*true or false"):
        tradetel.configure(exporters="none", env={"TRADETEL_SET_GLOBAL_METER_PROVIDER": "maybe"})


def test_a_global_set_by_someone_else_is_a_configuration_error() -> None:
    """When another SDK set-up owns the global, configure() fails and says to pass meter_provider instead."""
    other = MeterProvider()
    metrics.set_meter_provider(other)
    with pytest.raises(ConfigurationError) as raised:
        tradetel.configure(exporters="none", env={}, set_global_meter_provider=True)
    message = str(raised.value)
    assert "TRADETEL_SET_GLOBAL_METER_PROVIDER" in message
    assert "meter_provider=tel.meter_provider" in message
    assert "opentelemetry-instrument" in message
    assert metrics.get_meter_provider() is other
    other.shutdown()


def test_installing_a_closed_telemetry_is_refused(tel: tradetel.Telemetry) -> None:
    """A shut-down Telemetry cannot become the global provider."""
    closed = tradetel.configure(exporters="none", env={})
    closed.shutdown()
    with pytest.raises(ConfigurationError, match="not shut down"):
        install_global_meter_provider(closed)
    assert installed_telemetry() is tel


def test_a_taken_port_names_the_likely_cause_and_the_fixes(free_port: int) -> None:
    """configure() on a port another server holds fails with the setting, the SDK's own server as cause, and fixes."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port))
        holder.listen()
        with pytest.raises(ConfigurationError) as raised:
            tradetel.configure(exporters="prometheus", prometheus_port=free_port, env={})
    message = str(raised.value)
    assert "OTEL_EXPORTER_PROMETHEUS_PORT" in message
    assert "opentelemetry-instrument with OTEL_METRICS_EXPORTER=prometheus" in message
    assert "prometheus_port=" in message and "TradetelCollector" in message
