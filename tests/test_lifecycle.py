"""Shutdown within a deadline and the opt-in SIGTERM handler (the exit itself: tests/integration/test_exit.py)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

import tradetel
from tradetel._pipeline import PushLoop
from tradetel.testing import Capture


class _StuckExporter:
    """Blocks in export() until shutdown() is called, like an SDK exporter retrying a dead collector."""

    name = "stuck"

    def __init__(self) -> None:
        self.released = threading.Event()
        self.exports = 0

    def export(self, data: MetricsData, timeout: float) -> None:
        self.exports += 1
        self.released.wait(60)

    def shutdown(self, timeout: float) -> None:
        self.released.set()


def test_shutdown_gives_up_on_a_stuck_export_at_its_deadline(cap: Capture) -> None:
    """A final flush stuck in an exporter ends at the deadline: counted, and the exporter is closed (aborted)."""
    tel = cap.telemetry
    stuck = _StuckExporter()
    loop = PushLoop(tel._reader, [stuck], interval=3600, timeout=60, health=tel.health)
    loop.start()
    started = time.monotonic()
    assert loop.shutdown(0.3) is False
    assert time.monotonic() - started < 5  # the deadline, with room for a loaded machine; 60 s without it
    assert stuck.released.is_set() and stuck.exports == 1
    assert cap.value("tradetel.export.failures", exporter="shutdown", reason="deadline") == 1


def test_shutdown_flushes_the_last_interval_on_the_export_thread(cap: Capture) -> None:
    """The final flush runs once, on the export thread, and sends what was recorded since the last export."""
    seen: list[tuple[str, float]] = []

    class Recorder:
        name = "recorder"

        def export(self, data: MetricsData, timeout: float) -> None:
            for resource in data.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        if metric.name == "trading.orders.filled":
                            seen.append((threading.current_thread().name, metric.data.data_points[0].value))

        def shutdown(self, timeout: float) -> None:
            pass

    loop = PushLoop(cap.telemetry._reader, [Recorder()], interval=3600, timeout=5, health=cap.telemetry.health)
    loop.start()
    cap.telemetry.orders.filled.add(7, exchange="binance", symbol="BTC-USD", side="buy")
    assert loop.shutdown(5) is True
    assert seen == [("tradetel-export", 7)]


@pytest.fixture
def sigterm_restored() -> Iterator[None]:
    """Whatever a test does to the SIGTERM handler is undone."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_handler_is_installed_once_and_removed_with_the_last_telemetry(sigterm_restored: None) -> None:
    """Two opted-in Telemetry objects share one handler; the default action is back once both are shut down.

    What the handler does on a real SIGTERM (flush, exit 143) is proven in subprocesses by
    tests/test_process_models.py.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    first = tradetel.configure(exporters="none", handle_sigterm=True)
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler)
    with tradetel.configure(exporters="none", handle_sigterm=True):
        assert signal.getsignal(signal.SIGTERM) is handler
    assert signal.getsignal(signal.SIGTERM) is handler  # the first one still wants it
    first.shutdown()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_sigterm_chains_the_previous_handler(sigterm_restored: None) -> None:
    """A handler installed before is called on SIGTERM (no exit forced), and is back in place after shutdown."""
    calls: list[int] = []

    def previous(signum: int, frame: Any) -> None:
        calls.append(signum)

    signal.signal(signal.SIGTERM, previous)
    tel = tradetel.configure(exporters="none", handle_sigterm=True)
    assert signal.getsignal(signal.SIGTERM) is not previous
    os.kill(os.getpid(), signal.SIGTERM)
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)  # the handler runs in this thread between bytecodes
    assert calls == [signal.SIGTERM]
    tel.shutdown()
    assert signal.getsignal(signal.SIGTERM) is previous


def test_sigterm_is_left_alone_by_default_and_when_ignored(sigterm_restored: None) -> None:
    """Without the opt-in nothing is installed; with it, a process that ignores SIGTERM keeps ignoring it."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with tradetel.configure(exporters="none"):
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with tradetel.configure(exporters="none", handle_sigterm=True):
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN


def test_sigterm_opt_in_outside_the_main_thread_is_a_configuration_error() -> None:
    """Python installs signal handlers only from the main thread: configure() says so, naming the setting."""
    errors: list[BaseException] = []

    def configure() -> None:
        try:
            tradetel.configure(exporters="none", env={"TRADETEL_HANDLE_SIGTERM": "true"})
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=configure)
    thread.start()
    thread.join(10)
    assert len(errors) == 1 and isinstance(errors[0], tradetel.ConfigurationError)
    assert "handle_sigterm" in str(errors[0]) and "main thread" in str(errors[0])
