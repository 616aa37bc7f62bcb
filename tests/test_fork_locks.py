"""After ``os.fork`` the child starts clean, even when the parent held every lock at the moment of the fork.

The scenarios run in a fresh interpreter (this file is also the script: ``python test_fork.py <scenario>``),
so that the test process itself never forks. A child reports what it saw as one JSON line on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

FILL = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}
LATENCY = {"exchange": "binance", "stage": "ack"}


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _locks(tel: Any) -> list[Any]:
    """Every lock a recording, a collection or an export of ``orders.filled`` takes, and exchange_call's."""
    handle = tel.instrument("orders.filled")
    store = handle._store
    aggregation = store.aggregation(handle.attributes(FILL))
    consumer = tel.meter_provider._measurement_consumer
    return [
        aggregation._lock,
        store._match._lock,
        consumer._lock,
        *(storage._lock for storage in consumer._reader_storages.values()),
        tel._reader._lock,
        tel._push._export_lock,
        tel._health._lock,
        tel._streak_lock,
    ]


def held_locks() -> None:
    """Fork while another thread holds every lock; the child records, collects, exports and shuts down."""
    import tradetel
    from tradetel.decorators import exchange_call
    from tradetel.testing import Capture

    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "100",
    }
    tel = tradetel.configure(exporters="otlp", export_interval=0.05, instance_id="bot-7", env=env)
    fills = tel.orders.filled.bind(**FILL)
    fills.add(5)

    @exchange_call(endpoint="create_order", exchange="binance", telemetry=tel)
    def create_order() -> str:
        return "ok"

    create_order()
    tel.orders.latency.record(0.1, **LATENCY)  # a series only the parent records
    deadline = time.monotonic() + 10
    while Capture(tel).value("tradetel.export.failures", exporter="otlp") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        locks = _locks(tel)
        for lock in locks:
            lock.acquire()
        held.set()
        release.wait()
        for lock in reversed(locks):
            lock.release()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    pid = os.fork()
    if pid == 0:
        try:
            import signal

            signal.alarm(20)  # a deadlock ends the child with SIGALRM instead of hanging the test
            fills.add(2)
            tel.orders.filled.add(3, **FILL)
            create_order()
            cap = Capture(tel)
            end = time.monotonic() + 10
            while cap.value("tradetel.export.failures", exporter="otlp") < 1 and time.monotonic() < end:
                time.sleep(0.01)  # the child's own export thread must fail at least once on its own
            report = {
                "fills": cap.value("orders.filled", **FILL),
                "requests": cap.value("exchange.requests", status="ok"),
                "latency_series": len(cap.series("orders.latency")),
                "failures": cap.value("tradetel.export.failures", exporter="otlp"),
                "instance": tel.resource.attributes["service.instance.id"],
                "export_threads": sum(t.name == "tradetel-export" for t in threading.enumerate()),
            }
            tel.shutdown(timeout=2)
            print(json.dumps(report), flush=True)
        finally:
            os._exit(0)
    release.set()
    holder.join()
    _, status = os.waitpid(pid, 0)
    parent = Capture(tel)
    print(json.dumps({"child_status": status, "parent_fills": parent.value("orders.filled", **FILL)}), flush=True)
    tel.shutdown(timeout=2)


def _run(scenario: str) -> list[dict[str, Any]]:
    result = subprocess.run([sys.executable, __file__, scenario], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_child_starts_clean_although_the_parent_held_every_lock() -> None:
    """Forked while a parent thread held the aggregation, SDK, reader, export, health and decorator locks, the child
    neither deadlocks nor inherits data: it sees only its own fills and calls, none of the parent's series,
    exports from a thread of its own, under its own instance id; the parent's totals are untouched.
    """
    reports = _run("held-locks")
    assert len(reports) == 2, f"the child reported nothing (deadlocked, then ended by SIGALRM?): {reports}"
    child, parent = reports
    assert child == {
        "fills": 5,
        "requests": 1,
        "latency_series": 0,
        "failures": child["failures"],
        "instance": child["instance"],
        "export_threads": 1,
    }
    assert child["failures"] >= 1
    assert child["instance"].startswith("bot-7-") and child["instance"] != "bot-7"
    assert parent == {"child_status": 0, "parent_fills": 5}


if __name__ == "__main__":
    {"held-locks": held_locks}[sys.argv[1]]()
