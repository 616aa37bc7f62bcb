"""Many gunicorn workers, one target: exact service-wide totals in Prometheus through worker recycling.

The example in ``examples/gunicorn_app`` runs under real gunicorn (sync workers, then uvicorn workers) with
4 workers that gunicorn replaces every 60-90 requests (``max_requests``), so several generations of workers
serve the load. Every worker pushes OTLP to a real agent collector (``collector/agent.yaml``), which
forwards to a real gateway (``collector/gateway.yaml``); a real Prometheus scrapes the agent's one endpoint,
and the gateway's. The test counts its own successful responses and checks, in PromQL, that the counter and
the histogram count add up to exactly that in both tiers, that no series ever went down (no counter reset,
so no negative ``rate()``/``increase()``), and that the workers' series stay four however many processes
served.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gunicorn_app"
WORKERS = 4
FIRST_BATCH = 1500
SECOND_BATCH = 500  # sent right before SIGTERM: its tail reaches the agent only through the exit flush
CLIENTS = 6
TIERS = ("agent", "gateway")  # the agent's own /metrics, and the gateway it forwards to
ATTEMPTS = 5
COUNTER = "trading_http_server_requests_total"
HISTOGRAM_COUNT = "trading_http_server_request_duration_seconds_count"

VARIANTS = {
    # worker class, app, extra arguments, OTLP protocol
    "sync": ("sync", "wsgi_app:app", [], "grpc"),
    # Configured once in the master (--preload): the workers inherit the Telemetry and are renamed after the
    # fork. Over HTTP: a gRPC channel that the master used before the fork can hang a worker's exports.
    "uvicorn": ("uvicorn_worker.UvicornWorker", "asgi_app:app", ["--preload"], "http/protobuf"),
}


@dataclass
class Load:
    """What the test's clients got back: successful responses and the worker processes that sent them."""

    ok: int = 0
    failed: list[str] = field(default_factory=list)
    retried: int = 0
    served_by: set[tuple[int, int]] = field(default_factory=set)  # (pid, worker index)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(port: int, count: int, load: Load) -> None:
    """``count`` GET requests from ``CLIENTS`` threads; each answer is ``<pid> <worker index>``."""
    remaining = iter(range(count))
    take = threading.Lock()

    def client() -> None:
        while True:
            with take:
                if next(remaining, None) is None:
                    return
            for attempt in range(ATTEMPTS):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
                        pid, index = response.read().decode().split()
                        status = response.status
                    break
                except ConnectionError as exc:
                    # A uvicorn worker that reached max_requests closes the connections it accepted but has
                    # not read a request from: the app never saw these, so the request is sent again.
                    with load.lock:
                        load.retried += 1
                        if attempt == ATTEMPTS - 1:
                            load.failed.append(repr(exc))
            else:
                continue
            with load.lock:
                if status == 200:
                    load.ok += 1
                    load.served_by.add((int(pid), int(index)))
                else:
                    load.failed.append(f"status {status}")

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)


def agent_drops(telemetry_url: str) -> dict[str, float]:
    """Data points the collector's deltatocumulative processor dropped so far, by error (from its own metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(telemetry_url, timeout=5) as response:
        text = response.read().decode()
    drops: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            error = sample.labels.get("error")
            if "deltatocumulative_datapoints" in sample.name and error:
                drops[error] = drops.get(error, 0) + sample.value
    return drops


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_service_wide_totals_exact_through_recycling_and_sigterm(
    variant: str,
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    prometheus_server: Callable[..., Any],
    processes: Callable[..., Any],
    free_ports: Callable[[], int],
    wait_until: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """Through recycling and a SIGTERM, agent and gateway sums equal the responses served, never go down, 4 series."""
    worker_class, app, extra, protocol = VARIANTS[variant]
    gateway_env = collector_env()
    gateway = collector("gateway.yaml", gateway_env, wait_ports=[int(gateway_env["OTLP_GRPC_PORT"])])
    env = collector_env(GATEWAY_OTLP_ENDPOINT=f"127.0.0.1:{gateway_env['OTLP_GRPC_PORT']}")
    agent = collector("agent.yaml", env, wait_ports=[int(env["OTLP_GRPC_PORT"]), int(env["OTLP_HTTP_PORT"])])
    # Both tiers serve the same job and instance labels (the service's): a "tier" label tells them apart.
    prom = prometheus_server(
        {tier: target.metrics_url for tier, target in (("agent", agent), ("gateway", gateway))},
        scrape_options={
            tier: {"honor_labels": True, "metric_relabel_configs": [{"target_label": "tier", "replacement": tier}]}
            for tier in ("agent", "gateway")
        },
    )
    endpoint_port = env["OTLP_GRPC_PORT"] if protocol == "grpc" else env["OTLP_HTTP_PORT"]
    service = f"platform-{variant}"
    port = free_ports()
    argv = [
        *(sys.executable, "-m", "gunicorn", "--config", str(EXAMPLE / "gunicorn.conf.py")),
        *("--chdir", str(EXAMPLE), "--bind", f"127.0.0.1:{port}", "--worker-class", worker_class),
        *("--workers", str(WORKERS), "--max-requests", "60", "--max-requests-jitter", "30"),
        *extra,
        app,
    ]
    started = time.time()
    server = processes(
        "gunicorn",
        argv,
        tmp_path / "gunicorn.log",
        env={
            "OTEL_SERVICE_NAME": service,
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{endpoint_port}",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "TRADETEL_SHUTDOWN_TIMEOUT": "10",  # below the graceful_timeout of 20 s in gunicorn.conf.py
        },
    )
    wait_until(lambda: listening(port), "gunicorn to listen", 60, alive=server)

    load = Load()
    send(port, FIRST_BATCH, load)
    assert not load.failed, load.failed[:5]
    # While the server runs (workers replaced along the way), the totals catch up exactly, in both tiers.
    for tier in TIERS:
        selector = f'{{job="{service}",tier="{tier}"}}'
        prom.wait_for_value(f"sum({COUNTER}{selector})", load.ok, timeout=60)
        prom.wait_for_value(f"sum({HISTOGRAM_COUNT}{selector})", load.ok, timeout=60)

    send(port, SECOND_BATCH, load)
    assert not load.failed, load.failed[:5]
    server.popen.send_signal(signal.SIGTERM)
    assert server.popen.wait(60) == 0, server.log_tail()
    served = FIRST_BATCH + SECOND_BATCH
    assert load.ok == served
    telemetry = {
        "agent": f"http://127.0.0.1:{env['TELEMETRY_PORT']}/metrics",
        "gateway": f"http://127.0.0.1:{gateway_env['TELEMETRY_PORT']}/metrics",
    }
    for tier in TIERS:
        selector = f'{{job="{service}",tier="{tier}"}}'
        try:
            prom.wait_for_value(f"sum({COUNTER}{selector})", served, timeout=60)
            prom.wait_for_value(f"sum({HISTOGRAM_COUNT}{selector})", served, timeout=60)
        except pytest.fail.Exception as failure:
            drops = agent_drops(telemetry[tier])
            pytest.fail(f"{failure}\n{tier} deltatocumulative drops: {drops}\n{server.log_tail(80)}")
        assert agent_drops(telemetry[tier]) == {}, tier
    prom.wait_for_scrape("agent")
    prom.wait_for_scrape("gateway")
    ended = time.time()

    # Several generations of workers served; their series are the 4 worker slots of this master.
    processes_served = {pid for pid, _ in load.served_by}
    assert len(processes_served) >= 2 * WORKERS, f"only {len(processes_served)} worker processes: no recycling"
    assert {index for _, index in load.served_by} == set(range(WORKERS))
    slots = {f"{socket.gethostname()}-{server.popen.pid}-w{index}" for index in range(WORKERS)}
    span = int(ended - started) + 1
    first = ended - span  # query_range steps from its start: this one ends exactly at `ended`
    for tier in TIERS:
        selector = f'{{job="{service}",tier="{tier}"}}'
        instances = {labels["instance"] for labels in prom.labels(f"count by (instance) ({COUNTER}{selector})")}
        assert instances == slots, tier
        for name in (COUNTER, HISTOGRAM_COUNT):
            # No series ever went down: Prometheus saw no counter reset anywhere in the run...
            resets = prom.query(f"resets({name}{selector}[{span + 10}s])")
            assert len(resets) == WORKERS and all(float(sample["value"][1]) == 0 for sample in resets), resets
            # ...so the service-wide total only grows, and its rate is never negative.
            for expr in (f"sum({name}{selector})", f"sum(rate({name}{selector}[5s]))"):
                series = prom.api("query_range", query=expr, start=str(first), end=str(ended), step="1")["result"]
                values = [float(value) for _, value in series[0]["values"]]
                assert values, expr
                if expr.startswith("sum(rate"):
                    assert min(values) >= 0, (expr, min(values))
                else:
                    assert all(b >= a for a, b in pairwise(values)), (expr, values)
                    assert values[-1] == served
