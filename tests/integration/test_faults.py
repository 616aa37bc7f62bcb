"""Backend faults with real servers: a dead and restarted collector, a closed DogStatsD port, hung scrapers.

In every case a bot thread keeps recording through the fault and never sees an exception, and once the
backend is back the totals there equal what the bot recorded, exactly.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

import tradetel
from tradetel.testing import Capture

pytestmark = pytest.mark.integration

Wait = Callable[..., Any]
Collector = Any  # tests/integration/conftest.py: a running collector with samples() and total()

FILL = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}
LATENCY = {"exchange": "binance", "stage": "ack"}
LATENCY_VALUE = 0.25  # a binary fraction: sums of it are exact, so the collector's sums can be compared exactly


class Bot:
    """Records from its own thread like a trading loop, counting what it recorded and keeping any exception.

    ``pause()`` returns once the current step is finished, so the counts are exact while paused.
    """

    def __init__(self, tel: tradetel.Telemetry) -> None:
        self.tel = tel
        self.fills = 0
        self.latencies = 0
        self.errors: list[BaseException] = []
        self._gate = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bot", daemon=True)

    def __enter__(self) -> Bot:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        fills, latency = self.tel.orders.filled, self.tel.orders.latency.bind(**LATENCY)
        try:
            while not self._stop.is_set():
                with self._gate:
                    fills.add(2, **FILL)
                    self.fills += 2
                    latency.record(LATENCY_VALUE)
                    self.latencies += 1
                time.sleep(0.0005)
        except BaseException as exc:  # the point of these tests: nothing may reach the bot
            self.errors.append(exc)

    def pause(self) -> None:
        self._gate.acquire()

    def resume(self) -> None:
        self._gate.release()

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(10)
            assert not self._thread.is_alive()

    def totals(self) -> tuple[int, int, float]:
        """Fills, latency count and latency sum recorded so far."""
        return self.fills, self.latencies, self.latencies * LATENCY_VALUE


def _failures(tel: tradetel.Telemetry, exporter: str) -> float:
    return Capture(tel).value("tradetel.export.failures", exporter=exporter)


def _wait_for_more_failures(wait: Wait, tel: tradetel.Telemetry, exporter: str, more: int = 3) -> None:
    before = _failures(tel, exporter)
    wait(lambda: _failures(tel, exporter) >= before + more, f"{more} more failed exports to {exporter}")


# --- OTLP: the collector absent at start, killed, restarted ---------------------------------------------


def _collector_totals(otel: Collector, namespace: str, **labels: str) -> tuple[float, float, float]:
    return (
        otel.total(f"{namespace}_orders_filled_total", **labels, **FILL),
        otel.total(f"{namespace}_orders_latency_seconds_count", **labels, **LATENCY),
        otel.total(f"{namespace}_orders_latency_seconds_sum", **labels, **LATENCY),
    )


def _wait_for_totals(
    wait: Wait, otel: Collector, expected: tuple[float, float, float], read: Callable[[], Any]
) -> None:
    seen: list[Any] = []

    def arrived() -> bool:
        seen[:] = [read()]
        return bool(seen[0] == expected)

    wait(arrived, f"the collector to show {expected}", alive=otel.process)
    assert seen == [expected]


@pytest.mark.parametrize(
    ("protocol", "temporality"),
    [("grpc", "cumulative"), ("http/protobuf", "delta")],
    ids=["grpc-cumulative", "http-delta"],
)
def test_collector_absent_killed_and_restarted(
    protocol: str,
    temporality: str,
    collector: Callable[..., Collector],
    collector_env: Callable[..., dict[str, str]],
    wait_until: Wait,
) -> None:
    """The collector is absent at start, then up, then killed (SIGKILL) while the bot records, then restarted.

    The bot never sees an exception and the failed exports are counted. Cumulative: the restarted
    collector shows every total. Delta: what the first collector showed before the kill plus what the
    restarted one shows equals every total, so no failed export moved the delta baseline.
    """
    env = collector_env()
    port_variable = "OTLP_GRPC_PORT" if protocol == "grpc" else "OTLP_HTTP_PORT"
    port = int(env[port_variable])
    job = f"faults-{temporality}"
    settings = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": temporality,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
        "OTEL_SERVICE_NAME": job,
    }
    with tradetel.configure(exporters="otlp", export_interval=0.1, env=settings) as tel, Bot(tel) as bot:
        _wait_for_more_failures(wait_until, tel, "otlp")  # nothing listens yet

        first = collector("gateway.yaml", env, wait_ports=[port])
        bot.pause()
        _wait_for_totals(wait_until, first, bot.totals(), lambda: _collector_totals(first, "trading", job=job))
        before_kill = bot.totals()
        first.process.popen.kill()
        first.process.popen.wait(10)
        bot.resume()
        _wait_for_more_failures(wait_until, tel, "otlp")

        second = collector("gateway.yaml", env, wait_ports=[port])
        bot.stop()
        recorded = bot.totals()
        expected = (
            recorded
            if temporality == "cumulative"
            else tuple(r - b for r, b in zip(recorded, before_kill, strict=True))
        )
        _wait_for_totals(wait_until, second, expected, lambda: _collector_totals(second, "trading", job=job))
        assert recorded[0] > before_kill[0] > 0
    assert bot.errors == []


# --- DogStatsD: the consumer's port closed and reopened ---------------------------------------------


class UdpRelay:
    """A UDP port on 127.0.0.1 forwarding every datagram to ``target``; it can be closed and reopened."""

    def __init__(self, target: int, port: int) -> None:
        self.target = ("127.0.0.1", target)
        self.port = port
        self.forwarded = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", self.port))
        sock.settimeout(0.05)
        self._sock, self._stop = sock, threading.Event()
        self._thread = threading.Thread(target=self._forward, args=(sock, self._stop), daemon=True)
        self._thread.start()

    def _forward(self, sock: socket.socket, stop: threading.Event) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            while not stop.is_set():
                try:
                    datagram = sock.recv(65_536)
                except TimeoutError:
                    continue
                out.sendto(datagram, self.target)
                self.forwarded += 1

    def close(self) -> None:
        """Close the port: senders get ICMP port unreachable, as when the agent is down."""
        if self._sock is not None and self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            self._sock.close()
            self._sock = self._thread = None


def test_dogstatsd_port_closed_and_reopened(
    collector: Callable[..., Collector],
    collector_env: Callable[..., dict[str, str]],
    free_ports: Callable[[], int],
    wait_until: Wait,
) -> None:
    """DogStatsD through a relay into agent.yaml's statsd receiver; the relay's port closes for a while.

    While the port is closed every export is counted as `refused` (the lost datagrams are seen on
    the socket right after each send) and the bot never sees an exception; once the port is back,
    the collector's counter, histogram `.count` and `.sum` totals equal everything recorded.
    """
    env = collector_env()
    otel = collector("agent.yaml", env)
    relay = UdpRelay(int(env["STATSD_PORT"]), free_ports())
    relay.open()
    settings = {
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_DOGSTATSD_PORT": str(relay.port),
        "TRADETEL_DOGSTATSD_MODE": "statsd",
        "TRADETEL_NAMESPACE": "relayed",
    }

    def totals() -> tuple[float, float, float]:
        return (
            otel.total("relayed_orders_filled_total", **FILL),
            otel.total("relayed_orders_latency_count_total", **LATENCY),
            otel.total("relayed_orders_latency_sum_total", **LATENCY),
        )

    try:
        with tradetel.configure(exporters="dogstatsd", export_interval=0.1, env=settings) as tel, Bot(tel) as bot:
            wait_until(lambda: totals()[0] > 0, "the first datagrams to reach the collector", alive=otel.process)
            bot.pause()
            _wait_for_totals(wait_until, otel, bot.totals(), totals)
            relay.close()
            forwarded = relay.forwarded
            bot.resume()
            _wait_for_more_failures(wait_until, tel, "dogstatsd")
            failures = Capture(tel).series("tradetel.export.failures")
            assert {attributes["reason"] for attributes, count in failures if count} == {"refused"}
            relay.open()
            bot.stop()
            _wait_for_totals(wait_until, otel, bot.totals(), totals)
            assert relay.forwarded > forwarded
    finally:
        relay.close()
    assert bot.errors == []


# --- Prometheus: hung and slow scrapers (a taken port: see tests/test_telemetry.py) ----------------------


def test_hung_scrapers_block_neither_scrapes_nor_recording(prometheus_server: Callable[..., Any]) -> None:
    """Connections that never send a request, or read the answer a byte at a time, hold no lock.

    While they hang, a real Prometheus keeps scraping the endpoint and a bot thread keeps recording;
    Prometheus then reads the bot's exact total.
    """
    with tradetel.configure(exporters="prometheus", prometheus_port=0) as tel:
        assert tel.prometheus_url is not None
        host, port = "127.0.0.1", int(tel.prometheus_url.split(":")[2].split("/")[0])
        hung: list[socket.socket] = []
        try:
            for index in range(6):
                sock = socket.create_connection((host, port), timeout=5)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                if index % 2:  # a request, then never more than a byte read: the answer stalls in the socket
                    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    sock.recv(1)
                else:
                    sock.sendall(b"GET /metr")  # half a request line, then silence
                hung.append(sock)
            prom = prometheus_server({"bot": tel.prometheus_url}, scrape_interval="1s")
            with Bot(tel) as bot:
                prom.wait_for_scrape("bot")
                bot.pause()
                fills = bot.fills
                prom.wait_for_value('sum(trading_orders_filled_total{job="bot"})', fills)
                bot.resume()
            with urllib.request.urlopen(tel.prometheus_url, timeout=5) as answer:
                assert answer.status == 200
        finally:
            for sock in hung:
                sock.close()
    assert bot.errors == []
    assert fills > 0
