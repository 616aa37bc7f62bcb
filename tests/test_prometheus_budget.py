"""The built-in server's budget: the oldest stalled connection makes room, a silent client is dropped."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest

from tradetel.exporters.prometheus import PrometheusServer
from tradetel.testing import Capture


@pytest.fixture
def small(cap: Capture) -> Iterator[PrometheusServer]:
    cap.telemetry.orders.filled.add(2, exchange="binance", symbol="BTC-USD", side="buy")
    server = PrometheusServer(cap.telemetry.collect, port=0, max_connections=3, head_timeout=1.0)
    yield server
    server.close()


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_full_server_closes_the_oldest_stalled_connection_for_a_scrape(small: PrometheusServer) -> None:
    """With the cap reached by stalled clients, a scrape is answered and the oldest stalled client is closed."""
    stalled = [socket.create_connection((small.host, small.port), timeout=10) for _ in range(3)]
    try:
        for sock in stalled:
            sock.sendall(b"GET /met")
        with urllib.request.urlopen(small.url, timeout=10) as response:
            assert b'trading_orders_filled_total{exchange="binance",side="buy",symbol="BTC-USD"} 2' in response.read()
        assert _closed_by_server(stalled[0])
        assert small.open_connections <= 3
    finally:
        for sock in stalled:
            sock.close()


def test_a_client_that_sends_nothing_is_dropped_after_the_head_timeout(small: PrometheusServer) -> None:
    """A connection that never completes its request is closed by the server (here after 1 s), with no answer."""
    with socket.create_connection((small.host, small.port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        assert _closed_by_server(sock)
    assert small.open_connections == 0
