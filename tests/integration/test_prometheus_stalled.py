"""2,000 stalled scrapers against a bot limited to 1,024 file descriptors: the bot keeps working.

The bot runs in its own process (this file run as a script) with ``RLIMIT_NOFILE`` at 1,024, as on many
hosts. The test opens 2,000 connections that each send half a request line and stop, then checks that a
normal scrape is answered, that the bot can still open an outgoing TCP connection, that the endpoint's
threads and file descriptors stay within the documented budget, and that the accept loop does not spin.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.integration

STALLED = 2_000
FD_LIMIT = 1_024


def bot() -> None:
    """The bot: serves /metrics under a 1,024-descriptor limit and opens TCP connections when asked."""
    import tradetel
    from tradetel.exporters.prometheus import MAX_CONNECTIONS

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, hard))
    tel = tradetel.configure(exporters="prometheus", prometheus_port=0, env={}, service_name="stalled-bot")
    tel.orders.filled.add(3, exchange="binance", symbol="BTC-USD", side="buy")
    print(json.dumps({"url": tel.prometheus_url, "max_connections": MAX_CONNECTIONS}), flush=True)
    for line in sys.stdin:
        try:
            with socket.create_connection(("127.0.0.1", int(line)), timeout=5) as sock:
                sock.sendall(b"order")
            connected: Any = True
        except OSError as error:
            connected = repr(error)
        print(json.dumps({"connected": connected}), flush=True)
    tel.shutdown()


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def stalled_bot() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    process = subprocess.Popen(
        [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert process.stdout is not None
    try:
        yield process, json.loads(process.stdout.readline())
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@contextlib.contextmanager
def _stalled_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 256), hard))
    sockets: list[socket.socket] = []
    deadline = time.monotonic() + 60
    try:
        for _ in range(count):
            try:  # an endpoint that stops accepting makes connects time out: stop there, bounded
                sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                break
            sockets.append(sock)
            if time.monotonic() > deadline:
                break
            with contextlib.suppress(OSError):  # the server may already have closed it to make room
                sock.sendall(b"GET /metr")
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def _listener() -> tuple[socket.socket, list[bytes], threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def accept() -> None:
        connection, _ = server.accept()
        with connection:
            received.append(connection.recv(64))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return server, received, thread


def test_stalled_scrapers_do_not_starve_the_bot(stalled_bot: tuple[subprocess.Popen[str], dict[str, Any]]) -> None:
    """With 2,000 stalled connections open, a scrape is answered, the bot connects out, threads and fds stay capped."""
    process, started = stalled_bot
    assert process.stdin is not None and process.stdout is not None
    url, cap = started["url"], started["max_connections"]
    port = int(url.split(":")[2].split("/")[0])
    threads_before, fds_before = _threads(process.pid), _fds(process.pid)
    with _stalled_connections(port, STALLED) as sockets:
        assert len(sockets) == STALLED
        cpu = _cpu_seconds(process.pid)
        time.sleep(2)
        spent = _cpu_seconds(process.pid) - cpu
        assert spent < 0.5, f"the idle endpoint used {spent:.2f} s of CPU in 2 s with stalled clients"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
        assert 'trading_orders_filled_total{exchange="binance",side="buy",symbol="BTC-USD"} 3\n' in body
        server, received, thread = _listener()
        with server:
            process.stdin.write(f"{server.getsockname()[1]}\n")
            process.stdin.flush()
            assert json.loads(process.stdout.readline()) == {"connected": True}
            thread.join(10)
        assert received == [b"order"]
        assert _threads(process.pid) <= threads_before
        assert _fds(process.pid) <= fds_before + cap + 2
        assert fds_before + cap + 2 < FD_LIMIT


if __name__ == "__main__":
    bot()
