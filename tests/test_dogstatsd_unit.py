"""DogStatsD exporter: line mapping, deltas, sanitising, sample rates, packet sizes and transports."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

import tradetel
from tradetel._pipeline import ExportFailure
from tradetel.config import DogStatsdSettings, load_settings
from tradetel.exporters.dogstatsd import (
    DogStatsdExporter,
    DogStatsdSerializer,
    representative,
    sample_rate,
    tag,
)
from tradetel.exporters.prometheus import render
from tradetel.testing import Capture

LATENCY = {"exchange": "binance", "stage": "ack"}


def _parse(line: str) -> tuple[str, str, str, str | None, list[str]]:
    """name, value, type, rate, tags of one DogStatsD line."""
    head, *parts = line.split("|")
    name, value = head.split(":")
    kind, rate, tags = parts[0], None, []
    for part in parts[1:]:
        if part.startswith("@"):
            rate = part[1:]
        elif part.startswith("#"):
            tags = part[1:].split(",")
        else:
            raise AssertionError(f"unexpected part {part!r} in {line!r}")
    return name, value, kind, rate, tags


def _by_name(lines: list[str], name: str) -> list[tuple[str, str, str | None, list[str]]]:
    return [(v, k, r, t) for n, v, k, r, t in map(_parse, lines) if n == name]


def _sum_data(value: int, start: int = 1, time: int = 2, *more: dict[str, str]) -> MetricsData:
    points = [NumberDataPoint(attributes, start, time, value) for attributes in ({"side": "buy"}, *more)]
    metric = Metric("trading.orders.filled", "", "{order}", Sum(points, AggregationTemporality.CUMULATIVE, True))
    scope = ScopeMetrics(InstrumentationScope("tradetel"), [metric], "")
    return MetricsData([ResourceMetrics(Resource({"service.name": "bot"}), [scope], "")])


def test_counters_send_deltas_since_the_previous_export(cap: Capture) -> None:
    """A counter is sent as `c` with what was added since the last export, and nothing when unchanged."""
    serializer = DogStatsdSerializer()
    fills = cap.telemetry.orders.filled.bind(exchange="binance", symbol="BTC-USD", side="buy")
    fills.add(3)
    first = _by_name(serializer.lines(cap.telemetry.collect()), "trading.orders.filled")
    fills.add(2)
    second = _by_name(serializer.lines(cap.telemetry.collect()), "trading.orders.filled")
    third = _by_name(serializer.lines(cap.telemetry.collect()), "trading.orders.filled")
    assert [(v, k) for v, k, _, _ in first] == [("3", "c")]
    assert [(v, k) for v, k, _, _ in second] == [("2", "c")]
    assert third == []


def test_a_cumulative_value_that_goes_down_is_a_restart() -> None:
    """When a cumulative sum decreases (a restarted source) the whole new value is sent, not a negative delta."""
    serializer = DogStatsdSerializer()
    assert serializer.lines(_sum_data(10))[0].startswith("trading.orders.filled:10|c")
    assert serializer.lines(_sum_data(4))[0].startswith("trading.orders.filled:4|c")
    assert serializer.lines(_sum_data(9))[0].startswith("trading.orders.filled:5|c")
    assert serializer.lines(_sum_data(9, start=5))[0].startswith("trading.orders.filled:9|c")


def test_statsd_mode_sends_zero_for_unchanged_counters(cap: Capture) -> None:
    """In statsd mode unchanged counters and histogram count/sum send 0, so no receiver interval is empty."""
    tel = cap.telemetry
    serializer = DogStatsdSerializer("statsd")
    tel.orders.filled.add(3, exchange="binance", symbol="BTC-USD", side="buy")
    tel.orders.latency.record(0.03, **LATENCY)
    serializer.lines(tel.collect())
    lines = serializer.lines(tel.collect())
    assert [(v, k) for v, k, _, _ in _by_name(lines, "trading.orders.filled")] == [("0", "c")]
    assert [v for v, _, _, _ in _by_name(lines, "trading.orders.latency.count")] == ["0"]
    assert [v for v, _, _, _ in _by_name(lines, "trading.orders.latency.sum")] == ["0"]
    assert _by_name(lines, "trading.orders.latency") == []


def test_up_down_counters_and_gauges_are_gauges(cap: Capture) -> None:
    """Up-down counters send their current total and gauges their last value, as `g`, at every export."""
    tel = cap.telemetry
    serializer = DogStatsdSerializer()
    tel.orders.pending.add(3, exchange="binance", symbol="BTC-USD")
    tel.orders.pending.add(-1, exchange="binance", symbol="BTC-USD")
    tel.account.equity.set(10_250.5, account="main")
    for _ in range(2):
        lines = serializer.lines(tel.collect())
        assert [(v, k) for v, k, _, _ in _by_name(lines, "trading.orders.pending")] == [("2", "g")]
        assert [(v, k) for v, k, _, _ in _by_name(lines, "trading.account.equity")] == [("10250.5", "g")]


def test_statsd_mode_sends_negative_gauges_as_reset_then_value(cap: Capture) -> None:
    """In statsd mode a negative gauge is preceded by `0|g`, since a signed value means "add" to StatsD."""
    cap.telemetry.account.equity.set(-12.5, account="main")
    datadog = _by_name(DogStatsdSerializer("datadog").lines(cap.telemetry.collect()), "trading.account.equity")
    statsd = _by_name(DogStatsdSerializer("statsd").lines(cap.telemetry.collect()), "trading.account.equity")
    assert [v for v, _, _, _ in datadog] == ["-12.5"]
    assert [v for v, _, _, _ in statsd] == ["0", "-12.5"]


def test_histograms_send_buckets_with_weights_and_exact_count_and_sum(cap: Capture) -> None:
    """Each non-empty bucket is one `d` line inside that bucket with rate 1/count; count and sum are exact."""
    tel = cap.telemetry
    values = [0.004, 0.006, 0.007, 0.03, 0.04, 0.045, 0.2, 7.5]
    for value in values:
        tel.orders.latency.record(value, **LATENCY)
    point = cap.histogram("orders.latency", **LATENCY)
    lines = DogStatsdSerializer().lines(tel.collect())
    buckets = _by_name(lines, "trading.orders.latency")
    weights = 0
    for value, kind, rate, _ in buckets:
        assert kind == "d"
        weight = 1 if rate is None else int(1 / float(rate))
        weights += weight
        index = next(i for i, bound in enumerate(point.bounds) if float(value) <= bound)
        assert point.bucket_counts[index] == weight  # the representative lies in the bucket it stands for
    assert weights == len(values)
    assert len(buckets) == sum(1 for c in point.bucket_counts if c)
    assert [v for v, k, _, _ in _by_name(lines, "trading.orders.latency.count")] == [str(len(values))]
    assert float(_by_name(lines, "trading.orders.latency.sum")[0][0]) == pytest.approx(sum(values), rel=1e-12)
    assert all(k == "c" for _, k, _, _ in _by_name(lines, "trading.orders.latency.count"))


def test_histograms_send_only_what_the_interval_added(cap: Capture) -> None:
    """A second export carries only the new observations; a histogram without new ones sends nothing."""
    tel = cap.telemetry
    serializer = DogStatsdSerializer()
    tel.orders.latency.record(0.03, **LATENCY)
    serializer.lines(tel.collect())
    tel.orders.latency.record(0.2, **LATENCY)
    tel.orders.latency.record(0.21, **LATENCY)
    lines = serializer.lines(tel.collect())
    assert _by_name(lines, "trading.orders.latency.count")[0][0] == "2"
    assert float(_by_name(lines, "trading.orders.latency.sum")[0][0]) == pytest.approx(0.41)
    (only,) = _by_name(lines, "trading.orders.latency")
    assert float(only[0]) == pytest.approx(0.205)  # one bucket: its line carries the interval's mean
    assert only[2] is not None and int(1 / float(only[2])) == 2
    assert [line for line in serializer.lines(tel.collect()) if "latency" in line] == []


def test_representatives_stay_inside_their_bucket() -> None:
    """Open buckets use the observed min/max clamped into the bucket; closed ones a midpoint inside them."""
    bounds = (0.0, 1.0, 2.0)
    assert representative(0, bounds, -3.0, 5.0) == -3.0
    assert representative(0, bounds, 0.5, 5.0) == 0.0  # min from an older interval: clamped to the bound
    assert representative(3, bounds, -3.0, 5.0) == 5.0
    assert 2.0 < representative(3, bounds, -3.0, 1.0) < 2.0 + 1e-9
    assert representative(1, bounds, -3.0, 5.0) == 0.5
    assert representative(2, bounds, 1.0, 1.2) == pytest.approx(1.1)


@given(st.integers(min_value=2, max_value=1_000_000))
def test_sample_rate_weights_truncate_to_the_count(count: int) -> None:
    """`uint(1/rate)`, as the statsd receiver and the DataDog Agent compute it, gives back the count exactly."""
    rate = float(sample_rate(count))
    assert 0 < rate < 1
    assert int(1 / rate) == count


@given(key=st.text(min_size=1, max_size=20), value=st.text(max_size=40))
def test_tags_cannot_break_a_datagram(key: str, value: str) -> None:
    """Whatever the key and value, a tag adds no line break, field, tag separator or extra key colon."""
    rendered = tag(key, value)
    if rendered is None:
        return
    tag_key, _, tag_value = rendered.partition(":")
    assert tag_key and tag_value
    for bad in ("|", ",", "#", "\n", "\r"):
        assert bad not in rendered
    line = f"m:1|c|#{rendered},env:x"
    assert _parse(line)[4] == [rendered, "env:x"]


def test_unified_service_tags_come_from_settings_or_resource() -> None:
    """env, service and version come from DD_ENV/DD_SERVICE/DD_VERSION, else from the resource."""
    env = {"OTEL_SERVICE_NAME": "grid-bot", "TRADETEL_SERVICE_VERSION": "1.2.3", "TRADETEL_ENVIRONMENT": "paper"}
    with tradetel.configure(exporters="none", env=env) as tel:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        from_resource = _parse(DogStatsdSerializer().lines(tel.collect())[0])[4]
        explicit = DogStatsdSerializer(unified={"env": "live", "service": "svc", "version": None})
        from_settings = _parse(explicit.lines(tel.collect())[0])[4]
    assert {"env:paper", "service:grid-bot", "version:1.2.3"} <= set(from_resource)
    assert {"env:live", "service:svc", "version:1.2.3"} <= set(from_settings)


@pytest.fixture
def udp_listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def _receive_all(sock: socket.socket) -> list[bytes]:
    packets = []
    sock.settimeout(0.5)
    while True:
        try:
            packets.append(sock.recv(65_535))
        except TimeoutError:
            return packets


def _lines(packets: list[bytes]) -> list[str]:
    return [line for packet in packets for line in packet.decode().split("\n") if line]


def _exporter(listener: socket.socket, **settings: Any) -> DogStatsdExporter:
    port = listener.getsockname()[1]
    return DogStatsdExporter(DogStatsdSettings(url=f"udp://127.0.0.1:{port}", **settings))


def test_lines_longer_than_a_datagram_are_dropped_and_reported(udp_listener: socket.socket) -> None:
    """A line that cannot fit one datagram is dropped, the others are sent, and the loss is raised as a reason."""
    exporter = _exporter(udp_listener, max_packet_size=512)
    with pytest.raises(ExportFailure) as failure:
        exporter.export(_sum_data(1, 1, 2, {"note": "x" * 600}), 1.0)
    exporter.shutdown(1.0)
    assert failure.value.reasons == ("line_too_long",)
    assert _lines(_receive_all(udp_listener)) == ["trading.orders.filled:1|c|#side:buy,service:bot"]


def test_datagrams_are_sized_in_bytes(cap: Capture, udp_listener: socket.socket) -> None:
    """Lines with multi-byte characters are packed by their size in bytes: no datagram exceeds the packet size."""
    for i in range(40):
        cap.telemetry.orders.filled.add(1, exchange="binance", symbol=f"ÉTH-€{i}", side="buy")
    exporter = _exporter(udp_listener, max_packet_size=512)
    exporter.export(cap.telemetry.collect(), 1.0)
    exporter.shutdown(1.0)
    packets = _receive_all(udp_listener)
    assert len(packets) > 1
    assert all(len(packet) <= 512 for packet in packets)
    sent = _lines(packets)
    assert sorted(line.split("€")[1].split(",")[0] for line in sent if "€" in line) == sorted(map(str, range(40)))


def test_unreachable_socket_keeps_deltas_for_the_next_export(cap: Capture) -> None:
    """While the Unix socket does not exist nothing is taken: the first export that gets through sends it all."""
    directory = tempfile.mkdtemp(prefix="tt-dsd-")
    path = os.path.join(directory, "dsd.sock")
    fills = cap.telemetry.orders.filled.bind(exchange="binance", symbol="BTC-USD", side="buy")
    exporter = DogStatsdExporter(DogStatsdSettings(url=f"unixgram://{path}"))
    try:
        fills.add(2)
        with pytest.raises(ExportFailure) as failure:
            exporter.export(cap.telemetry.collect(), 1.0)
        assert failure.value.reasons == ("unreachable",)
        fills.add(3)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(path)
            exporter.export(cap.telemetry.collect(), 1.0)
            received = _lines(_receive_all(receiver))
    finally:
        exporter.shutdown(1.0)
        Path(path).unlink(missing_ok=True)
        os.rmdir(directory)
    assert [line.split("|#")[0] for line in received] == ["trading.orders.filled:5|c"]


def test_udp_datagrams_stay_within_the_packet_size(udp_listener: socket.socket) -> None:
    """Over real UDP, many series arrive complete in datagrams no larger than max_packet_size."""
    port = udp_listener.getsockname()[1]
    env = {"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(port), "TRADETEL_DOGSTATSD_MAX_PACKET_SIZE": "600"}
    with tradetel.configure(exporters="dogstatsd", env=env, export_interval=3600) as tel:
        for index in range(60):
            tel.orders.filled.add(index + 1, exchange="binance", symbol=f"SYM{index}-USD", side="buy")
        tel.force_flush()
        packets = _receive_all(udp_listener)
    assert packets and max(len(p) for p in packets) <= 600
    lines = [line for p in packets for line in p.decode().split("\n") if line.startswith("trading.orders.filled:")]
    assert sorted(int(_parse(line)[1]) for line in lines) == list(range(1, 61))


def test_process_environment_is_not_read_when_env_is_given(
    udp_listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``env=`` given, DD_*/DATADOG_TAGS of the process do not leak in: only tradetel's settings decide tags."""
    monkeypatch.setenv("DATADOG_TAGS", "team:leak")
    monkeypatch.setenv("DD_ENV", "leak")
    monkeypatch.setenv("DD_EXTERNAL_ENV", "it-leak")
    port = udp_listener.getsockname()[1]
    env = {"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(port), "DD_ENV": "paper"}
    with tradetel.configure(exporters="dogstatsd", env=env, export_interval=3600) as tel:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        tel.force_flush()
        text = b"".join(_receive_all(udp_listener)).decode()
    assert "env:paper" in text
    assert "leak" not in text and "|e:" not in text and "|c:" not in text


@pytest.fixture
def unix_datagram_socket() -> Iterator[tuple[socket.socket, str]]:
    directory = tempfile.mkdtemp(prefix="tt-dsd-")  # short: AF_UNIX paths are limited to ~100 bytes
    path = os.path.join(directory, "dsd.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield sock, path
    sock.close()
    Path(path).unlink(missing_ok=True)
    os.rmdir(directory)


def test_unix_domain_socket_transport(unix_datagram_socket: tuple[socket.socket, str]) -> None:
    """DD_DOGSTATSD_URL=unix:///path sends the same lines over a Unix datagram socket."""
    sock, path = unix_datagram_socket
    with tradetel.configure(exporters="dogstatsd", env={"DD_DOGSTATSD_URL": f"unix://{path}"}) as tel:
        tel.orders.filled.add(4, exchange="binance", symbol="BTC-USD", side="buy")
        tel.force_flush()
        text = b"".join(_receive_all(sock)).decode()
    assert "trading.orders.filled:4|c|#exchange:binance,symbol:BTC-USD,side:buy" in text


def test_unixgram_url_selects_a_datagram_socket(unix_datagram_socket: tuple[socket.socket, str], cap: Capture) -> None:
    """A unixgram:// URL (the datadog client's explicit datagram form) reaches the same socket."""
    sock, path = unix_datagram_socket
    exporter = DogStatsdExporter(DogStatsdSettings(url=f"unixgram://{path}"))
    cap.telemetry.orders.filled.add(2, exchange="binance", symbol="BTC-USD", side="buy")
    exporter.export(cap.telemetry.collect(), 1.0)
    exporter.shutdown(1.0)
    assert b"trading.orders.filled:2|c" in b"".join(_receive_all(sock))


def test_unreachable_socket_is_counted_on_the_prometheus_endpoint() -> None:
    """A missing DogStatsD socket is counted in tradetel.export.failures, visible in the exposition."""
    with tradetel.configure(
        exporters="dogstatsd", env={"DD_DOGSTATSD_URL": "unix:///nonexistent/tradetel/dsd.sock"}
    ) as tel:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        tel.force_flush()
        text = render(tel.collect()).decode()
    assert 'tradetel_export_failures_total{exporter="dogstatsd",reason="unreachable"} 1' in text


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DD_TAGS", "team:quant|x"),
        ("DATADOG_TAGS", "desk:#eu"),
        ("DD_ENTITY_ID", "pod uid"),
        ("DD_EXTERNAL_ENV", "it-false|c:forged"),
        ("DD_ORIGIN_DETECTION_ENABLED", "maybe"),
    ],
)
def test_datadog_variables_that_would_break_a_line_are_configuration_errors(variable: str, value: str) -> None:
    """A DD_* value that could end a field or a line is refused at configuration, naming the variable."""
    with pytest.raises(tradetel.ConfigurationError) as error:
        load_settings(env={variable: value})
    assert variable in str(error.value)


def test_statsd_mode_sends_no_origin_fields(cap: Capture) -> None:
    """The collector's statsd receiver rejects unknown fields: statsd mode never sends `|c:` or `|e:`."""
    cap.telemetry.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
    origin = {"container_id": "ci-abc", "external_env": "it-false,cn-bot", "entity_id": "pod"}
    datadog = DogStatsdSerializer("datadog", **origin).lines(cap.telemetry.collect())
    statsd = DogStatsdSerializer("statsd", **origin).lines(cap.telemetry.collect())
    assert all(line.endswith("|c:ci-abc|e:it-false,cn-bot") for line in datadog)
    assert all("|c:" not in line and "|e:" not in line for line in statsd)
    assert all("dd.internal.entity_id:pod" in line for line in datadog + statsd)


def test_tags_from_dd_tags_keep_unified_service_tags_single() -> None:
    """DD_TAGS adds constant tags; its env: only counts when DD_ENV is not set, so a line has one env tag."""
    settings = load_settings(env={"DD_TAGS": "team:quant, env:staging  desk:eu", "DD_ENV": "paper"})
    assert settings.dogstatsd.tags == ("team:quant", "env:staging", "desk:eu")
    serializer = DogStatsdSerializer(unified={"env": settings.dogstatsd.env}, tags=settings.dogstatsd.tags)
    tags = _parse(serializer.lines(_sum_data(1))[0])[4]
    assert tags == ["side:buy", "team:quant", "desk:eu", "env:paper", "service:bot"]
    fallback = DogStatsdSerializer(tags=settings.dogstatsd.tags)
    assert "env:staging" in _parse(fallback.lines(_sum_data(1))[0])[4]


def test_dd_dogstatsd_socket_selects_a_unix_socket() -> None:
    """DD_DOGSTATSD_SOCKET=/path means unix:///path, after DD_DOGSTATSD_URL and before DD_AGENT_HOST."""
    socket_env = {"DD_DOGSTATSD_SOCKET": "/var/run/datadog/dsd.socket", "DD_AGENT_HOST": "10.0.0.1"}
    assert load_settings(env=socket_env).dogstatsd.url == "unix:///var/run/datadog/dsd.socket"
    url_env = {**socket_env, "DD_DOGSTATSD_URL": "udp://127.0.0.1:9125"}
    assert load_settings(env=url_env).dogstatsd.url == "udp://127.0.0.1:9125"
    with pytest.raises(tradetel.ConfigurationError) as error:
        load_settings(env={"DD_DOGSTATSD_SOCKET": "dsd.socket"})
    assert "DD_DOGSTATSD_SOCKET" in str(error.value) and "absolute path" in str(error.value)


def test_dd_dogstatsd_socket_delivers(unix_datagram_socket: tuple[socket.socket, str]) -> None:
    """A tradetel configured by DD_DOGSTATSD_SOCKET alone delivers to that Unix datagram socket."""
    sock, path = unix_datagram_socket
    with tradetel.configure(exporters="dogstatsd", env={"DD_DOGSTATSD_SOCKET": path}, export_interval=3600) as tel:
        tel.orders.filled.add(6, exchange="binance", symbol="BTC-USD", side="buy")
        tel.force_flush()
        text = b"".join(_receive_all(sock)).decode()
    assert text.startswith("trading.orders.filled:6|c|")
