"""No resource or metric attribute set yields an exposition that promtool or prometheus_client's parsers reject."""

from __future__ import annotations

import subprocess
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tradetel.exporters.prometheus import render, render_openmetrics

CUMULATIVE = AggregationTemporality.CUMULATIVE
keys = st.one_of(st.sampled_from(["host.name", "host_name", "host-name", "le", "1st", "", "a..b", "a_b"]), st.text())
values = st.one_of(st.text(), st.integers(), st.booleans(), st.lists(st.text(max_size=3), max_size=3))
attribute_sets = st.dictionaries(keys, values, max_size=6)
BOUNDS = {"positive": (0.0, 0.5, 1.0, 10.0), "signed": (-1.0, 0.0, 1.0)}


def _data(resource: dict[str, Any], series: list[dict[str, Any]], bounds: tuple[float, ...]) -> MetricsData:
    counter = [NumberDataPoint(a, 0, 1, i + 1) for i, a in enumerate(series)]
    gauge = [NumberDataPoint(a, 0, 1, -1.5 * i) for i, a in enumerate(series)]
    buckets = [0] * len(bounds) + [1]
    histogram = [HistogramDataPoint(a, 0, 1, 1, 20.0, buckets, bounds, 20.0, 20.0) for a in series]
    metrics = [
        Metric("bot.fills", "Fills.", "{fill}", Sum(counter, CUMULATIVE, True)),
        Metric("bot.level", 'A "level".\nTwo lines.', "1", Gauge(gauge)),
        Metric("bot.latency", "Latency.", "s", Histogram(histogram, CUMULATIVE)),
    ]
    scope = ScopeMetrics(InstrumentationScope("bot"), metrics, "")
    return MetricsData([ResourceMetrics(Resource(resource), [scope], "")])


def _distinct(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attribute sets that stay distinct series once merged (the SDK never hands over two equal sets)."""
    from tradetel.exporters._exposition import _labels

    seen: dict[str, dict[str, Any]] = {}
    for attributes in series:
        seen.setdefault(_labels(attributes) + "|" + _labels(attributes, histogram=True), attributes)
    text_seen: dict[str, dict[str, Any]] = {}
    for attributes in seen.values():
        text_seen.setdefault(_labels(attributes), attributes)
    histogram_seen: dict[str, dict[str, Any]] = {}
    for attributes in text_seen.values():
        histogram_seen.setdefault(_labels(attributes, histogram=True), attributes)
    return list(histogram_seen.values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    resource=attribute_sets,
    series=st.lists(attribute_sets, min_size=1, max_size=4),
    bounds=st.sampled_from(sorted(BOUNDS)),
)
def test_any_attributes_give_an_exposition_every_parser_accepts(
    promtool: str, resource: dict[str, Any], series: list[dict[str, Any]], bounds: str
) -> None:
    """promtool, the text parser and the OpenMetrics parser accept the output, with one label per sanitised key."""
    data = _data(resource, _distinct(series), BOUNDS[bounds])
    text = render(data)
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    problems = checked.stdout.decode() + checked.stderr.decode()
    assert "error" not in problems.lower() and "duplicate" not in problems.lower(), problems
    families = list(parse_text(text.decode()))
    openmetrics = list(parse_openmetrics(render_openmetrics(data).decode()))
    expected = len(_distinct(series))
    for parsed in (families, openmetrics):
        by_name = {family.name: family for family in parsed}
        fills = by_name.get("bot_fills_total", by_name.get("bot_fills"))
        assert fills is not None and len(fills.samples) == expected
        assert sum(s.value for s in fills.samples) == sum(range(1, expected + 1))
        histogram = by_name["bot_latency_seconds"]
        assert [s.value for s in histogram.samples if s.labels.get("le") == "+Inf"] == [1] * expected
        if Resource(resource).attributes:  # the SDK drops invalid keys such as ""
            assert len([s for f in parsed for s in f.samples if s.name == "target_info"]) == 1


def test_colliding_keys_are_merged_in_sorted_key_order() -> None:
    """host.name and host_name become one host_name label, values joined by ';' in the sorted keys' order."""
    data = _data({"host_name": "b", "host.name": "a", "service.name": "bot"}, [{"x.y": "1", "x_y": "2"}], (1.0,))
    target = next(f for f in parse_text(render(data).decode()) if f.name == "target_info").samples[0]
    assert target.labels == {"host_name": "a;b", "service_name": "bot"}
    fills = next(f for f in parse_text(render(data).decode()) if f.name == "bot_fills").samples[0]
    assert fills.labels == {"x_y": "1;2"}
    families = {f.name: f for f in parse_text(render(_data({}, [{"le": "mine"}], (1.0,))).decode())}
    assert families["bot_latency_seconds"].samples[0].labels == {"exported_le": "mine", "le": "1"}
    assert families["bot_fills"].samples[0].labels == {"le": "mine"}  # only histograms reserve `le`


def test_the_prometheus_client_bridge_merges_colliding_keys_the_same_way() -> None:
    """TradetelCollector's families carry the same merged labels as tradetel's own exposition."""
    import prometheus_client

    from tradetel.exporters.prometheus_client import families

    data = _data({"host_name": "b", "host.name": "a"}, [{"x.y": "1", "x_y": "2", "le": "3"}], (1.0,))

    class _Registry:
        def collect(self) -> Any:
            return families(data)

    def parsed(text: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        samples = [s for family in parse_text(text.decode()) for s in family.samples]
        return {(s.name, tuple(sorted(s.labels.items())), s.value) for s in samples}

    assert parsed(prometheus_client.generate_latest(_Registry())) == parsed(render(data))  # type: ignore[arg-type]
