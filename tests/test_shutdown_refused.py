"""With the collector down (its port refuses connections), shutdown gives up at once and says what was lost."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator

import pytest

import tradetel
from tradetel._pipeline import connection_refused

FILL = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A 127.0.0.1 port that is bound but never listens: every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_shutdown_skips_a_refusing_collector_and_logs_the_loss(
    protocol: str, refused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """shutdown() does not spend its 20 s deadline on a refused port; the log names the points not delivered."""
    caplog.set_level(logging.WARNING, logger="tradetel")
    path = "" if protocol == "grpc" else "/v1/metrics"
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{refused_port}{path}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "30000",
    }
    tel = tradetel.configure(exporters="otlp", export_interval=3600, shutdown_timeout=20, env=env)
    tel.orders.filled.add(3, **FILL)
    tel.orders.filled.add(1, **{**FILL, "side": "sell"})
    tel.orders.latency.record(0.2, exchange="binance", stage="ack")
    collected = tel.collect()
    points = sum(
        len(m.data.data_points) for r in collected.resource_metrics for s in r.scope_metrics for m in s.metrics
    )
    started = time.monotonic()
    tel.shutdown()
    took = time.monotonic() - started
    assert took < 10  # half the deadline: the SDK exporter would have retried for all of it
    messages = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(messages) == 1, [r.getMessage() for r in caplog.records]
    found = re.search(r"(\d+) points of (\d+) metrics", messages[0])
    assert found is not None and int(found.group(1)) == points >= 3, messages[0]
    assert "otlp" in messages[0]


def test_connection_refused_tells_refused_from_listening_and_other_addresses(refused_port: int) -> None:
    """Only a refused TCP connection counts: a listening port, a unix socket and a bad port are left to the exporter."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert connection_refused(f"http://127.0.0.1:{port}/v1/metrics", 4318, 1.0) is False
        assert connection_refused(f"127.0.0.1:{port}", 4317, 1.0) is False
    assert connection_refused(f"http://127.0.0.1:{refused_port}/v1/metrics", 4318, 1.0) is True
    assert connection_refused(f"127.0.0.1:{refused_port}", 4317, 1.0) is True
    assert connection_refused("unix:///tmp/collector.sock", 4317, 1.0) is False
    assert connection_refused("http://127.0.0.1:99999", 4318, 1.0) is False
