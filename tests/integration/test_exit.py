"""Process exit flushes the last interval: a bot in a child process records N measurements and exits.

The bot pushes once an hour, so only the final flush can deliver anything: by a normal exit (atexit), by
SIGTERM with ``handle_sigterm``, and within ``shutdown_timeout`` when the collector is gone. This file is
also the bot: ``python test_exit.py <endpoint> <service> <n> <how>``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

N = 1234
FILL = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}
LATENCY = {"exchange": "binance", "stage": "ack"}


def bot(endpoint: str, service: str, n: int, how: str) -> None:
    """Record ``n`` fills and ``n`` latencies, then leave the way ``how`` says."""
    import tradetel

    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "30000",  # longer than the shutdown deadline below
        "OTEL_SERVICE_NAME": service,
        "TRADETEL_SHUTDOWN_TIMEOUT": "2",
        "TRADETEL_HANDLE_SIGTERM": "true" if how == "sigterm" else "false",
    }
    tel = tradetel.configure(exporters="otlp", export_interval=3600, env=env)
    for _ in range(n):
        tel.orders.filled.add(1, **FILL)
        tel.orders.latency.record(0.5, **LATENCY)
    print("ready", flush=True)
    if how.startswith("sigterm"):
        while True:  # a trading loop waiting for its next tick, until SIGTERM
            time.sleep(0.05)


def _run_bot(endpoint: str, service: str, how: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, endpoint, service, str(N), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line == "ready\n", process.stderr.read() if process.stderr else line


@pytest.mark.integration
@pytest.mark.parametrize("how", ["exit", "sigterm"])
def test_exit_flushes_exactly_n(
    how: str,
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    wait_until: Callable[..., Any],
) -> None:
    """A child records N fills and N latencies and exits (normally, or on SIGTERM with the opt-in: status 143).

    The real collector received exactly N of each, from the final flush alone.
    """
    env = collector_env()
    otel = collector("gateway.yaml", env, wait_ports=[int(env["OTLP_GRPC_PORT"])])
    service = f"exit-{how}"
    with _run_bot(f"http://127.0.0.1:{env['OTLP_GRPC_PORT']}", service, how) as process:
        try:
            _ready(process)
            if how == "sigterm":
                process.send_signal(signal.SIGTERM)
            code = process.wait(30)
        finally:
            process.kill()
        errors = process.stderr.read() if process.stderr else ""
    assert code == (128 + signal.SIGTERM if how == "sigterm" else 0), errors

    def arrived() -> tuple[float, float]:
        return (
            otel.total("trading_orders_filled_total", job=service, **FILL),
            otel.total("trading_orders_latency_seconds_count", job=service, **LATENCY),
        )

    wait_until(lambda: arrived() == (N, N), f"{N} fills and latencies at the collector", alive=otel.process)


def test_sigterm_without_the_opt_in_loses_the_interval() -> None:
    """Without handle_sigterm, SIGTERM ends the bot at once (killed by the signal): the reason for the opt-in."""
    with _run_bot("http://127.0.0.1:9", "no-opt-in", "sigterm-default") as process:
        try:
            _ready(process)
            process.send_signal(signal.SIGTERM)
            code = process.wait(30)
        finally:
            process.kill()
    assert code == -signal.SIGTERM


def test_dead_collector_cannot_hold_the_exit_past_the_deadline() -> None:
    """With the collector gone and an OTLP timeout of 30 s, exit still finishes within the 2 s shutdown deadline."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connections are refused
        with _run_bot(f"http://127.0.0.1:{port}", "dead-collector", "exit") as process:
            try:
                _ready(process)
                started = time.monotonic()
                code = process.wait(20)
                took = time.monotonic() - started
            finally:
                process.kill()
    assert code == 0
    assert took < 2 + 5  # the deadline, plus generous room for a loaded machine; 30 s without it


if __name__ == "__main__":
    bot(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
