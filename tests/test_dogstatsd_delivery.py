"""DogStatsD delivery over real sockets: what is lost is seen, counted and sent again, and totals end exact.

Every receiver here is a real socket that the test reads: a Unix datagram socket, a Unix stream socket
with the DataDog framing, or a UDP socket. Failures are the kernel's own: a receiver that is gone, a
receive queue that is full, a datagram larger than the socket takes.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import tradetel
from tradetel._pipeline import ExportFailure
from tradetel.config import DogStatsdSettings
from tradetel.exporters._dogstatsd_socket import DogStatsdSocket
from tradetel.exporters.dogstatsd import DogStatsdExporter
from tradetel.testing import Capture, capture


@pytest.fixture
def socket_path() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="tt-dsd-")  # short: AF_UNIX paths are limited to ~100 bytes
    path = os.path.join(directory, "dsd.sock")
    yield path
    Path(path).unlink(missing_ok=True)
    os.rmdir(directory)


def _datagram_receiver(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    return sock


def _drain(sock: socket.socket) -> list[str]:
    """Every line waiting in a datagram socket's queue, without waiting for more."""
    lines = []
    sock.setblocking(False)
    while True:
        try:
            packet = sock.recv(65_536)
        except BlockingIOError:
            return lines
        lines.extend(line for line in packet.decode().split("\n") if line)


def _counter_totals(lines: list[str], name: str = "bot.fills") -> dict[str, int]:
    """Per symbol, what the `c` lines of ``name`` add up to."""
    totals: dict[str, int] = {}
    for line in lines:
        head, kind = line.split("|")[:2]
        metric, value = head.split(":")
        if metric == name and kind == "c":
            symbol = line.split("symbol:")[1].split(",")[0].split("|")[0]
            totals[symbol] = totals.get(symbol, 0) + int(value)
    return totals


def _record(cap: Capture, symbols: list[str], amount: int, recorded: dict[str, int]) -> None:
    """Adds ``amount`` per symbol to a counter of the test's own (the catalog's folds rare symbols into `other`)."""
    fills = cap.telemetry.meter.create_counter("bot.fills")  # the same instrument on every call
    for symbol in symbols:
        fills.add(amount, {"symbol": symbol})
        recorded[symbol] = recorded.get(symbol, 0) + amount


def test_unix_receiver_gone_then_back_gives_exact_totals(cap: Capture, socket_path: str) -> None:
    """A Unix datagram receiver that goes away is seen (refused, then unreachable); once back, totals are exact."""
    exporter = DogStatsdExporter(DogStatsdSettings(url=f"unixgram://{socket_path}"))
    symbols = ["BTC-USD", "ETH-USD"]
    recorded: dict[str, int] = {}
    received: list[str] = []
    receiver = _datagram_receiver(socket_path)
    _record(cap, symbols, 1, recorded)
    exporter.export(cap.telemetry.collect(), 1.0)
    received += _drain(receiver)
    receiver.close()
    Path(socket_path).unlink()

    reasons = []
    for amount in (2, 4):
        _record(cap, symbols, amount, recorded)
        with pytest.raises(ExportFailure) as failure:
            exporter.export(cap.telemetry.collect(), 1.0)
        reasons.append(failure.value.reasons)
    assert reasons == [("refused",), ("unreachable",)]  # the connected socket first, then a new connect

    receiver = _datagram_receiver(socket_path)
    try:
        _record(cap, symbols, 8, recorded)
        exporter.export(cap.telemetry.collect(), 1.0)
        received += _drain(receiver)
    finally:
        exporter.shutdown(1.0)
        receiver.close()
    assert _counter_totals(received) == recorded == dict.fromkeys(symbols, 15)


def test_full_receive_queue_loses_nothing_once_drained(socket_path: str) -> None:
    """A receiver that stops reading fills its queue: the datagrams that did not fit are counted and sent again.

    Only the series of the datagrams that failed are re-sent: after draining, every total is exact, with
    no series counted twice.
    """
    with capture(cardinality_limit=4000) as cap:  # 3000 series of an instrument outside the catalog
        _fill_and_drain(cap, socket_path)


def _fill_and_drain(cap: Capture, socket_path: str) -> None:
    receiver = _datagram_receiver(socket_path)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
    exporter = DogStatsdExporter(DogStatsdSettings(url=f"unixgram://{socket_path}"))
    # About two dozen 8 KiB datagrams: well over the receive queue's length limit (net.unix.max_dgram_qlen,
    # 10 by default), so the first export always fills it. With a dozen, a run could fit them all.
    symbols = [f"SYM{i:04}-USD" for i in range(3000)]
    recorded: dict[str, int] = {}
    try:
        _record(cap, symbols, 1, recorded)
        with pytest.raises(ExportFailure) as failure:
            exporter.export(cap.telemetry.collect(), 0.05)
        assert failure.value.reasons == ("buffer_full",)
        received = _drain(receiver)
        assert 0 < len(_counter_totals(received)) < len(symbols)  # some arrived, not all
        _record(cap, symbols, 2, recorded)
        reasons = []
        for _ in range(20):  # each round delivers what fits the queue, then the test drains it
            try:
                exporter.export(cap.telemetry.collect(), 0.05)
            except ExportFailure as again:
                reasons.append(again.reasons)
            else:
                break
            finally:
                received += _drain(receiver)
        assert set(reasons) <= {("buffer_full",)}
    finally:
        exporter.shutdown(1.0)
        receiver.close()
    assert _counter_totals(received) == recorded


class _Reader:
    """Reads a Unix datagram socket on a thread, so that a small send buffer keeps emptying."""

    def __init__(self, path: str) -> None:
        self.sock = _datagram_receiver(path)
        self.sock.settimeout(0.2)
        self.packets: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.packets.append(self.sock.recv(65_536))
            except TimeoutError:
                continue

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(5)
        self.packets.extend(packet.encode() for packet in _drain(self.sock))
        self.sock.close()
        return [line for packet in self.packets for line in packet.decode().split("\n") if line]


def test_oversize_datagrams_are_split_and_a_line_too_large_is_dropped(cap: Capture, socket_path: str) -> None:
    """EMSGSIZE: datagrams too large for the socket are split and delivered; a single line that large is dropped.

    The socket's send buffer is shrunk below the 8 KiB datagrams of a Unix socket, so the kernel refuses
    them with EMSGSIZE. Every counter still arrives exact; only the one line larger than anything the
    socket takes is lost, counted as `too_large`.
    """
    reader = _Reader(socket_path)
    sock = DogStatsdSocket(f"unixgram://{socket_path}")
    raw = sock.open()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024)  # the kernel doubles it: about 2 KiB
    limit = raw.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    exporter = DogStatsdExporter(DogStatsdSettings(url=f"unixgram://{socket_path}"), sock=sock)
    symbols = [f"SYM{i:03}-USD" for i in range(400)]
    recorded: dict[str, int] = {}
    _record(cap, symbols, 3, recorded)
    cap.telemetry.meter.create_counter("bot.fills").add(1, {"symbol": "HUGE-" + "x" * limit})
    try:
        with pytest.raises(ExportFailure) as failure:
            exporter.export(cap.telemetry.collect(), 5.0)
    finally:
        exporter.shutdown(1.0)
        lines = reader.stop()
    assert failure.value.reasons == ("too_large",)
    assert _counter_totals(lines) == recorded  # the huge line alone is missing


class _StreamServer:
    """A Unix stream listener reading DataDog-framed datagrams (4-byte little-endian length, then the payload)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.listener.settimeout(0.2)
        self.frames: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(0.2)
                buffer = b""
                while not self._stop.is_set():
                    try:
                        chunk = connection.recv(65_536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    buffer += chunk
                    while len(buffer) >= 4 and len(buffer) >= 4 + struct.unpack("<I", buffer[:4])[0]:
                        (length,) = struct.unpack("<I", buffer[:4])
                        self.frames.append(buffer[4 : 4 + length].decode())
                        buffer = buffer[4 + length :]

    def lines(self) -> list[str]:
        return [line for frame in self.frames for line in frame.split("\n") if line]

    def stop(self) -> None:
        """Close the connection and the listener, and remove the socket file: the agent is gone."""
        self._stop.set()
        self._thread.join(5)
        self.listener.close()
        Path(self.path).unlink(missing_ok=True)


def _wait_for_frames(server: _StreamServer, count: int) -> None:
    for _ in range(100):
        if len(server.frames) >= count:
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"{len(server.frames)} frame(s) arrived, {count} expected")


def test_unixstream_frames_and_a_broken_connection(cap: Capture, socket_path: str) -> None:
    """Over a Unix stream socket each datagram is one length-prefixed frame; a closed peer is seen and re-sent."""
    server = _StreamServer(socket_path)
    exporter = DogStatsdExporter(DogStatsdSettings(url=f"unix://{socket_path}"))  # unix:// finds the stream kind
    symbols = ["BTC-USD", "ETH-USD"]
    recorded: dict[str, int] = {}
    try:
        _record(cap, symbols, 1, recorded)
        exporter.export(cap.telemetry.collect(), 1.0)
        _wait_for_frames(server, 1)
        server.stop()
        received = server.lines()

        _record(cap, symbols, 2, recorded)
        with pytest.raises(ExportFailure) as failure:
            exporter.export(cap.telemetry.collect(), 1.0)
        assert failure.value.reasons == ("disconnected",)

        server = _StreamServer(socket_path)
        _record(cap, symbols, 4, recorded)
        exporter.export(cap.telemetry.collect(), 1.0)
        _wait_for_frames(server, 1)
    finally:
        exporter.shutdown(1.0)
        server.stop()
    received += server.lines()
    assert _counter_totals(received) == recorded == dict.fromkeys(symbols, 7)


def test_failures_are_counted_with_their_reason_on_the_prometheus_endpoint(socket_path: str) -> None:
    """A Unix receiver that went away shows as tradetel_export_failures_total with reason refused, then unreachable."""
    receiver = _datagram_receiver(socket_path)
    env = {"DD_DOGSTATSD_URL": f"unixgram://{socket_path}"}
    with tradetel.configure(exporters="dogstatsd", env=env, export_interval=3600) as tel:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        tel.force_flush()
        receiver.close()
        Path(socket_path).unlink()
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        tel.force_flush()
        tel.force_flush()
        series = Capture(tel).series("tradetel.export.failures")
        failures = {attributes["reason"]: value for attributes, value in series}
    assert {reason: value for reason, value in failures.items() if value} == {"refused": 1, "unreachable": 1}
    assert set(failures) == set(DogStatsdExporter.failure_reasons)  # the others exist at 0 from start-up


class _ReceiverGoesAwayAfterOneDatagram(DogStatsdSocket):
    """A real socket whose receiver is closed and removed right after the first datagram it delivers."""

    def __init__(self, url: str, receiver: socket.socket, path: str) -> None:
        super().__init__(url)
        self.receiver = receiver
        self.path = path
        self.received: list[str] = []

    def send(self, payload: bytes, deadline: float) -> None:
        super().send(payload, deadline)
        if self.receiver.fileno() != -1:
            self.received += _drain(self.receiver)
            self.receiver.close()
            Path(self.path).unlink()


def test_series_split_over_datagrams_and_delivered_in_part_is_not_counted_twice(cap: Capture, socket_path: str) -> None:
    """A histogram series larger than one datagram, delivered in part, is dropped and counted, never re-sent.

    Re-sending it would add its delivered buckets a second time at the consumer; what arrives stays at
    most what was recorded, and the loss shows as `partial_series`.
    """
    receiver = _datagram_receiver(socket_path)
    sock = _ReceiverGoesAwayAfterOneDatagram(f"unixgram://{socket_path}", receiver, socket_path)
    exporter = DogStatsdExporter(DogStatsdSettings(url=f"unixgram://{socket_path}"), sock=sock)
    latency = cap.telemetry.meter.create_histogram("bot.latency", explicit_bucket_boundaries_advisory=list(range(40)))
    label = {"venue": "v" * 400}  # 40 lines of about 450 bytes: more than one 8 KiB datagram
    values = [index + 0.5 for index in range(40)]
    for value in values:
        latency.record(value, label)
    with pytest.raises(ExportFailure) as failure:
        exporter.export(cap.telemetry.collect(), 1.0)
    assert set(failure.value.reasons) == {"refused", "unreachable", "partial_series"}  # 3 datagrams
    first = sock.received
    assert 0 < sum(1 for line in first if line.startswith("bot.latency:")) < len(values)  # delivered in part

    for value in values:
        latency.record(value, label)
    receiver = _datagram_receiver(socket_path)
    try:
        exporter.export(cap.telemetry.collect(), 1.0)
        second = _drain(receiver)
    finally:
        exporter.shutdown(1.0)
        receiver.close()
    per_bucket: dict[int, int] = {}
    for line in first + second:
        if line.startswith("bot.latency:"):
            head, _, *fields = line.split("|")
            weight = next((int(1 / float(f[1:])) for f in fields if f.startswith("@")), 1)
            bucket = math.ceil(float(head.split(":")[1]))
            per_bucket[bucket] = per_bucket.get(bucket, 0) + weight
    assert max(per_bucket.values()) <= 2  # each bucket got one value per interval: none counted twice
    assert len(values) < sum(per_bucket.values()) < 2 * len(values)  # the first interval's delivered part, once
    counts = [int(line.split("|")[0].split(":")[1]) for line in second if line.startswith("bot.latency.count:")]
    assert counts == [len(values)]  # the first interval's lost part, its count included, was dropped
