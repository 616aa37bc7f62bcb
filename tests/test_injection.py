"""Attribute values cannot inject lines, labels or tags into the Prometheus exposition or DogStatsD datagrams.

Hostile values (quotes, backslashes, newlines, separators, a would-be second sample) go in twice: through
tradetel's recording API (label policies first), and raw into an OpenTelemetry SDK collection rendered by
the same exporters, so that the escaping itself is tested, not only the policies in front of it.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from tradetel.config import DogStatsdSettings
from tradetel.exporters.dogstatsd import DogStatsdExporter, DogStatsdSerializer
from tradetel.exporters.prometheus import render
from tradetel.testing import Capture

HOSTILE = (
    'say "hi"',
    "back\\slash\\",
    "line\nbreak",
    "carriage\rreturn",
    'x"} 1\ninjected_total{a="b"} 999\n#',
    "# HELP injected_total fake\n# TYPE injected_total counter",
    "a|b|c",
    "a,b,c",
    "#tag",
    "key:value:more",
    "|#env:prod,service:evil\nevil.metric:1|c",
    "tab\there",
    "nul\x00byte",
    "unicode line\u2028separator",
    "next\x85line",
    "{}=,",
    "",
    "trailing\\",
    'le="+Inf"',
    "\\n literally",
)


@pytest.fixture
def hostile_data() -> MetricsData:
    """A raw SDK collection: one series per hostile value on a counter, an up-down counter, a gauge and a histogram."""
    reader = InMemoryMetricReader()
    resource = Resource({"service.name": 'evil"\nservice', "deployment.environment.name": "prod|#x:y"})
    provider = MeterProvider(metric_readers=[reader], resource=resource)
    meter = provider.get_meter("injection")
    counter = meter.create_counter("evil.requests", unit="1", description='help with "quotes"\nand a newline\\')
    updown = meter.create_up_down_counter("evil.pending", unit="1", description="pending")
    gauge = meter.create_gauge("evil.level", unit="1", description="level")
    histogram = meter.create_histogram("evil.latency", unit="s", description="latency")
    for index, value in enumerate(HOSTILE):
        attributes = {"value": value, "index": str(index), 'k"ey\n': value}
        counter.add(index + 1, attributes)
        updown.add(-(index + 1), attributes)
        gauge.set(index + 0.5, attributes)
        histogram.record(0.01 * (index + 1), attributes)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    return data


def _record_hostile(cap: Capture) -> None:
    tel = cap.telemetry
    for index, value in enumerate(HOSTILE):
        tel.orders.filled.add(index + 1, exchange=value, symbol=f"S{index}", side="buy")
        tel.exchange.requests.add(1, exchange=value, endpoint=value, status="ok")
        tel.trades.r_multiple.record(0.5, symbol=value, strategy=f"s{index}")
        tel.account.equity.set(float(index), account=value)


def _promtool(promtool: str, text: bytes) -> None:
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, output
    assert output.strip() == "", output


def _samples(text: bytes) -> list[Any]:
    return [sample for family in text_string_to_metric_families(text.decode()) for sample in family.samples]


def test_raw_hostile_values_stay_inside_their_labels(hostile_data: MetricsData, promtool: str) -> None:
    """promtool accepts the exposition, and parsing it gives back every raw value in its own sample, nothing more."""
    text = render(hostile_data)
    _promtool(promtool, text)
    samples = _samples(text)
    assert not [s for s in samples if "injected" in s.name]
    by_name: dict[str, list[Any]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    assert sorted(by_name) == sorted(
        [
            "target_info",
            "evil_requests_total",
            "evil_pending",
            "evil_level_ratio",
            "evil_latency_seconds_bucket",
            "evil_latency_seconds_sum",
            "evil_latency_seconds_count",
        ]
    )
    for name in ("evil_requests_total", "evil_pending", "evil_level_ratio", "evil_latency_seconds_count"):
        assert len(by_name[name]) == len(HOSTILE)
        for sample in by_name[name]:
            index = int(sample.labels["index"])
            assert sample.labels["value"] == HOSTILE[index]
            assert sample.labels["k_ey_"] == HOSTILE[index]
            assert set(sample.labels) == {"value", "index", "k_ey_"}
    totals = {int(s.labels["index"]): s.value for s in by_name["evil_requests_total"]}
    assert totals == {index: index + 1 for index in range(len(HOSTILE))}
    [info] = by_name["target_info"]
    assert info.labels["service_name"] == 'evil"\nservice'


def test_hostile_values_through_the_api_pass_promtool(cap: Capture, promtool: str) -> None:
    """Recorded through tradetel (policies first), the exposition passes promtool and parses to the recorded values."""
    _record_hostile(cap)
    text = render(cap.telemetry.collect())
    _promtool(promtool, text)
    samples = _samples(text)
    exposed = sorted(s.labels["exchange"] for s in samples if s.name == "trading_orders_filled_total")
    recorded = sorted(attributes["exchange"] for attributes, _ in cap.series("orders.filled"))
    assert exposed == recorded
    assert len(exposed) == len(set(exposed))
    assert not [s for s in samples if "injected" in s.name or "evil" in s.name]


# --- DogStatsD ----------------------------------------------------------------------------------------------

NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
NUMBER = r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[-+]?[0-9]+)?"
LINE = re.compile(
    rf"(?P<name>{NAME}):(?P<value>{NUMBER})\|(?P<type>c|g|d)(?:\|@(?P<rate>{NUMBER}))?(?:\|#(?P<tags>.*))?"
)
TAG = re.compile(r"(?P<key>[^:,|#\s]+):(?P<value>[^,|#\n\r]*)")


def parse_datagram(datagram: bytes) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Strictly parse one datagram: lines of ``name:value|type|@rate|#k:v,k:v``; anything else fails the test."""
    out = []
    text = datagram.decode("utf-8")
    lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")  # one final newline is allowed
    for line in lines:
        match = LINE.fullmatch(line)
        assert match is not None, f"not a DogStatsD line: {line!r}"
        tags = []
        if match["tags"] is not None:
            for tag in match["tags"].split(","):
                tag_match = TAG.fullmatch(tag)
                assert tag_match is not None, f"not a tag: {tag!r} in {line!r}"
                tags.append((tag_match["key"], tag_match["value"]))
        out.append((match["name"], match["type"], tags))
    return out


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 standing in for the DataDog Agent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.settimeout(0.5)
    yield sock
    sock.close()


def _send_and_receive(data: MetricsData, receiver: socket.socket) -> list[bytes]:
    port = receiver.getsockname()[1]
    exporter = DogStatsdExporter(DogStatsdSettings(url=f"udp://127.0.0.1:{port}", env="paper"))
    try:
        exporter.export(data, timeout=5)
    finally:
        exporter.shutdown(timeout=5)
    datagrams = []
    while True:
        try:
            datagrams.append(receiver.recv(65_536))
        except TimeoutError:
            return datagrams


EXPECTED_TAGS = {"value", "index", 'k"ey\n', "env", "service"}


def test_raw_hostile_values_cannot_break_datagrams(hostile_data: MetricsData, udp_receiver: socket.socket) -> None:
    """Every datagram the exporter sends parses strictly; every line has its metric and exactly its tags."""
    datagrams = _send_and_receive(hostile_data, udp_receiver)
    assert datagrams
    lines = [line for datagram in datagrams for line in parse_datagram(datagram)]
    expected_lines = len(DogStatsdSerializer(unified={"env": "paper"}).lines(hostile_data))
    assert len(lines) == expected_lines
    names = {"evil.requests", "evil.pending", "evil.level", "evil.latency", "evil.latency.count", "evil.latency.sum"}
    assert {name for name, _, _ in lines} == names
    indexes: dict[str, set[str]] = {name: set() for name in names}
    for name, _, tags in lines:
        keys = [key for key, _ in tags]
        index = dict(tags)["index"]
        value = HOSTILE[int(index)]
        # value, index, the hostile key, env, service; an empty value sends no tag at all
        assert len(keys) == (5 if value else 3), tags
        assert "env" in keys and "service" in keys
        if value:
            assert dict(tags)["value"] == re.sub(r"[|,#\x00-\x1f\x7f]", "_", value)  # the documented replacement
        indexes[name].add(index)
    for name in ("evil.requests", "evil.pending", "evil.level", "evil.latency.count"):
        assert indexes[name] == {str(i) for i in range(len(HOSTILE))}, name


def test_hostile_values_through_the_api_cannot_break_datagrams(cap: Capture, udp_receiver: socket.socket) -> None:
    """Recorded through tradetel, every line still parses strictly with the catalog's tags and nothing else."""
    _record_hostile(cap)
    data = cap.telemetry.collect()
    lines = [line for datagram in _send_and_receive(data, udp_receiver) for line in parse_datagram(datagram)]
    filled = [tags for name, _, tags in lines if name == "trading.orders.filled"]
    assert len(filled) == len(cap.series("orders.filled"))
    for tags in filled:
        keys = sorted(key for key, _ in tags)
        assert keys in (["env", "exchange", "service", "side", "symbol"], ["env", "service", "side", "symbol"])
    assert all(name.startswith(("trading.", "tradetel.")) for name, _, _ in lines)
