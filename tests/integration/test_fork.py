"""A parent and four forked children record; every process's totals reach the real collector once.

Two children come from ``os.fork`` (the pre-fork style of gunicorn, leaving through ``sys.exit``), two from
``multiprocessing`` with the fork start method (leaving through ``os._exit``). A thread of the parent
records without pause while the children are forked, so locks are often held at the moment of a fork.
The push interval is an hour: what arrives comes from each process's final flush. This file is also the
bot: ``python test_fork.py <protocol> <endpoint> <service> <out-dir>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FILL = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}
LATENCY = {"exchange": "binance", "stage": "ack"}
CHILDREN = {"os.fork": (11, 22), "multiprocessing": (33, 44)}
PARENT_BEFORE_FORK = 1000


def _listening_copy(port: int) -> bool:
    """Whether this process holds a listening TCP socket on ``port`` (Linux: looks through /proc/self/fd)."""
    import socket

    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue  # not a socket, or the directory's own descriptor
        with sock:
            try:
                if sock.getsockname()[1] == port and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    return True
            except (OSError, IndexError, TypeError):
                continue
    return False


def _report(out: Path, role: str, tel: Any, fills: int, latencies: int, **more: object) -> None:
    record = {
        "role": role,
        "pid": os.getpid(),
        "instance": tel.resource.attributes["service.instance.id"],
        "fills": fills,
        "latencies": latencies,
        **more,
    }
    (out / f"{role}-{os.getpid()}.json").write_text(json.dumps(record))


def bot(protocol: str, endpoint: str, service: str, out: Path) -> None:
    """The parent: records, forks four children that record their own amounts, keeps serving /metrics."""
    import multiprocessing
    import threading
    import urllib.request

    import tradetel
    from tradetel.testing import Capture

    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": service,
    }
    tel = tradetel.configure(exporters=["prometheus", "otlp"], prometheus_port=0, export_interval=3600, env=env)
    assert tel.prometheus_url is not None
    port = int(tel.prometheus_url.split(":")[2].split("/")[0])
    tel.orders.filled.add(PARENT_BEFORE_FORK, **FILL)
    tel.orders.latency.record(0.5, **LATENCY)
    hammered = [0]
    stop = threading.Event()

    def hammer() -> None:
        fills = tel.orders.filled.bind(**FILL)
        while not stop.is_set():
            fills.add(1)
            hammered[0] += 1

    def child(role: str, amount: int) -> None:
        for _ in range(amount):
            tel.orders.filled.add(1, **FILL)
            tel.orders.latency.record(0.5, **LATENCY)
        own = Capture(tel)
        _report(
            out,
            role,
            tel,
            amount,
            amount,
            seen_locally=own.value("orders.filled", **FILL),
            listener=_listening_copy(port),
            prometheus_url=tel.prometheus_url,
            export_threads=sum(t.name == "tradetel-export" for t in threading.enumerate()),
        )

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    pids = []
    for amount in CHILDREN["os.fork"]:
        pid = os.fork()
        if pid == 0:
            child("os.fork", amount)
            sys.exit(0)  # a gunicorn worker's way out: atexit runs
        pids.append(pid)
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=child, args=("multiprocessing", a)) for a in CHILDREN["multiprocessing"]]
    for process in processes:
        process.start()
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    for process in processes:
        process.join(60)
        codes.append(process.exitcode if process.exitcode is not None else -1)
    stop.set()
    thread.join(10)
    with urllib.request.urlopen(tel.prometheus_url, timeout=10) as answer:
        served = answer.status == 200 and b"trading_orders_filled_total" in answer.read()
    _report(out, "parent", tel, PARENT_BEFORE_FORK + hammered[0], 1, child_exit_codes=codes, served=served)
    tel.shutdown()


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_forked_children_export_their_own_totals(
    protocol: str,
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    wait_until: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """Every process's totals arrive under its own instance, none twice: per instance and in sum, exact.

    Each child starts from zero (it sees only its own fills), has a fresh export thread, and has closed its
    copy of the parent's Prometheus listener, which the parent keeps serving.
    """
    env = collector_env()
    grpc = protocol == "grpc"
    port = int(env["OTLP_GRPC_PORT" if grpc else "OTLP_HTTP_PORT"])
    otel = collector("gateway.yaml", env, wait_ports=[port])
    endpoint = f"http://127.0.0.1:{port}"
    service = "fork-" + protocol.replace("/", "-")
    result = subprocess.run(
        [sys.executable, __file__, protocol, endpoint, service, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    reports = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("*.json"))]
    parent = next(r for r in reports if r["role"] == "parent")
    children = [r for r in reports if r["role"] != "parent"]
    assert sorted(r["fills"] for r in children) == sorted(a for amounts in CHILDREN.values() for a in amounts)
    assert parent["child_exit_codes"] == [0, 0, 0, 0]
    assert parent["served"] is True
    for report in children:
        assert report["seen_locally"] == report["fills"]  # nothing inherited from the parent
        assert report["listener"] is False and report["prometheus_url"] is None
        assert report["export_threads"] == 1
    assert len({r["instance"] for r in reports}) == len(reports) == 5

    def per_instance() -> dict[str, tuple[float, float]]:
        fills = otel.samples("trading_orders_filled_total", job=service, **FILL)
        latencies = otel.samples("trading_orders_latency_seconds_count", job=service, **LATENCY)
        counts = {labels["instance"]: value for labels, value in latencies}
        return {labels["instance"]: (value, counts.get(labels["instance"], 0.0)) for labels, value in fills}

    expected = {r["instance"]: (float(r["fills"]), float(r["latencies"])) for r in reports}
    wait_until(lambda: per_instance() == expected, f"every process's totals at the collector: {expected}")
    assert sum(fills for fills, _ in per_instance().values()) == sum(r["fills"] for r in reports)


if __name__ == "__main__":
    bot(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]))
