"""The collector fleet layout end to end: 20 demo bots, 2 agents, 2 gateways, remote write into Prometheus.

Everything runs on 127.0.0.1: bots (``tradetel demo --ticks N --counts``, OTLP/gRPC, cumulative, one export
a second) → fleet-agent.yaml (two, ten bots each) → load_balancing by resource → fleet-gateway.yaml (two) →
prometheus_remote_write → a real Prometheus started with ``--web.enable-remote-write-receiver``. While the
bots run, one agent is killed with SIGKILL and started again, then one gateway is killed with SIGKILL and
started again (the static resolver keeps its series for it; they wait in the agents' queues). At the end,
PromQL totals per instance and overall equal what every bot says it recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

BOTS = 20
AGENTS = 2
GATEWAYS = 2
# 20 loop iterations a second at most: long enough that both kills happen while every bot runs.
TICKS = 700
JOB = "fleet-bot"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# counts key -> (Prometheus series, how many of the key each increment stands for)
TOTALS = {
    "cycles": "trading_strategy_cycles_total",
    "rejects": "trading_orders_rejected_total",
    "trades": "trading_trades_closed_total",
    "trips": "trading_risk_circuit_breaker_trips_total",
}
UPDATES = "trading_market_data_updates_total"


Collector = Any  # conftest.Collector
PrometheusServer = Any  # conftest.PrometheusServer


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


@dataclass
class Usage:
    """Peak resident memory and CPU time of a process, from /proc while it still runs."""

    peak_rss_mib: float
    cpu_seconds: float

    @classmethod
    def of(cls, pid: int) -> Usage:
        status = Path(f"/proc/{pid}/status").read_text()
        hwm_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), counted from 1
        return cls(hwm_kib / 1024, (utime + stime) / CLOCK_TICKS)


def _bot_env(agent: Collector, index: int) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{agent.address('OTLP_GRPC_PORT')}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulative",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_SERVICE_NAME": JOB,
        "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id=bot-{index:02d}",
    }


def _per_instance(prom: PrometheusServer, expr: str) -> dict[str, float]:
    return {s["metric"].get("instance", ""): float(s["value"][1]) for s in prom.query(expr)}


def _nonzero(values: dict[str, float]) -> dict[str, float]:
    """A counter a bot never incremented has no series at all: compare only the non-zero totals."""
    return {key: value for key, value in values.items() if value}


def _remote_write_responses(prom: PrometheusServer) -> dict[str, float]:
    """Prometheus's own count of answers to remote-write requests, by status code."""
    from prometheus_client.parser import text_string_to_metric_families

    codes: dict[str, float] = {}
    for family in text_string_to_metric_families(http_get(f"{prom.url}/metrics").decode()):
        for sample in family.samples:
            if sample.name == "prometheus_http_requests_total" and sample.labels.get("handler") == "/api/v1/write":
                codes[sample.labels["code"]] = codes.get(sample.labels["code"], 0) + sample.value
    return codes


def _accepted_points(otel: Collector) -> float:
    """Metric points the collector's receivers accepted, from its own telemetry."""
    from prometheus_client.parser import text_string_to_metric_families

    text = http_get(f"http://{otel.address('TELEMETRY_PORT')}/metrics").decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "otelcol_receiver_accepted_metric_points_total"  # the parser adds _total to counters
    )


def test_fleet_totals_are_exact_through_agent_and_gateway_kills(
    collector: Callable[..., Collector],
    collector_env: Callable[..., dict[str, str]],
    prometheus_server: Callable[..., PrometheusServer],
    processes: Callable[..., Any],
    wait_until: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """20 bots over 2 agents and 2 gateways: with an agent and a gateway killed mid-run, PromQL totals are exact.

    Per instance and overall, for a counter with one series per symbol and four counters with a series per
    strategy, status or reason, the value in Prometheus equals what each bot counted itself.
    """
    prom = prometheus_server({}, extra_args=["--web.enable-remote-write-receiver"])
    remote_write = f"{prom.url}/api/v1/write"
    usage: dict[str, list[Usage]] = {}

    gateway_envs = [collector_env(REMOTE_WRITE_URL=remote_write) for _ in range(GATEWAYS)]
    gateways = [collector("fleet-gateway.yaml", env) for env in gateway_envs]
    endpoints = "[" + ", ".join(gw.address("OTLP_GRPC_PORT") for gw in gateways) + "]"
    agent_envs = [collector_env(GATEWAY_ENDPOINTS=endpoints, AGENT_HOST_NAME=f"host-{i}") for i in range(AGENTS)]
    agents = [collector("fleet-agent.yaml", env) for env in agent_envs]

    started = time.monotonic()
    bots = []
    for index in range(BOTS):
        agent = agents[index % AGENTS]
        argv = [sys.executable, "-m", "tradetel", "demo", "--exporters", "otlp", "--quiet", "--counts"]
        argv += ["--ticks", str(TICKS), "--seed", str(index)]
        bots.append(processes(f"bot-{index:02d}", argv, tmp_path / f"bot-{index:02d}.log", env=_bot_env(agent, index)))

    def all_bots_seen() -> bool:
        return len(_per_instance(prom, f'sum by (instance) ({UPDATES}{{job="{JOB}"}})')) == BOTS

    wait_until(all_bots_seen, "every bot's first export in Prometheus", 90, interval=0.5, alive=prom.process)

    def kill_and_restart(role: str, old: Collector, config: str, env: dict[str, str]) -> Collector:
        running = [bot.name for bot in bots if bot.popen.poll() is None]
        assert len(running) == BOTS, f"bots finished before the {role} was killed; raise TICKS: {running}"
        usage.setdefault(role, []).append(Usage.of(old.process.popen.pid))
        old.process.popen.kill()
        old.process.popen.wait(timeout=10)
        time.sleep(3)
        return collector(config, env)

    agents[0] = kill_and_restart("agent 0", agents[0], "fleet-agent.yaml", agent_envs[0])
    killed_at = time.monotonic() - started
    gateways[0] = kill_and_restart("gateway 0", gateways[0], "fleet-gateway.yaml", gateway_envs[0])
    restarted_at = time.monotonic() - started
    print(f"\nfleet: agent 0 killed and restarted by {killed_at:.1f} s, gateway 0 by {restarted_at:.1f} s")

    counts: dict[str, dict[str, Any]] = {}
    for index, bot in enumerate(bots):
        try:
            code = bot.popen.wait(timeout=max(10.0, 150 - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            pytest.fail(f"{bot.name} did not finish:\n{bot.log_tail()}")
        assert code == 0, bot.log_tail()
        counts[f"bot-{index:02d}"] = json.loads(bot.log.read_text().splitlines()[-1])
    assert all(c["ticks"] == TICKS for c in counts.values())
    last_record = max(c["last_record"] for c in counts.values())

    expected = {
        UPDATES: {i: c["ticks"] * c["symbols"] for i, c in counts.items()},
        **{series: {i: c[key] for i, c in counts.items()} for key, series in TOTALS.items()},
    }
    seen: dict[str, dict[str, float]] = {}

    def exact() -> bool:
        for series in expected:
            seen[series] = _per_instance(prom, f'sum by (instance) ({series}{{job="{JOB}"}})')
        return all(_nonzero(seen[series]) == _nonzero(per_bot) for series, per_bot in expected.items())

    try:
        wait_until(exact, "exact totals per instance in Prometheus", 60, interval=0.2, alive=prom.process)
    except pytest.fail.Exception:
        wrong = {s: {i: (seen.get(s, {}).get(i), v) for i, v in e.items() if seen.get(s, {}).get(i, 0) != v}
                 for s, e in expected.items()}  # fmt: skip
        pytest.fail(f"totals (Prometheus, bot) that differ: {wrong}")
    delay = time.time() - last_record

    for series, per_bot in expected.items():
        overall = prom.query(f'sum({series}{{job="{JOB}"}})')  # no series at all when no bot counted any
        assert sum(float(sample["value"][1]) for sample in overall) == sum(per_bot.values()), series
    for symbol in ("BTC-USD", "ETH-USD", "SOL-USD"):
        by_instance = _per_instance(prom, f'sum by (instance) ({UPDATES}{{job="{JOB}",symbol="{symbol}"}})')
        assert by_instance == {i: c["ticks"] for i, c in counts.items()}, symbol
    accepted = [_accepted_points(gateway) for gateway in gateways]
    assert all(accepted), f"a gateway received nothing, the load is not balanced: {accepted}"

    for name, group in (("agent", agents), ("gateway", gateways)):
        for index, otel in enumerate(group):
            usage.setdefault(f"{name} {index}", []).append(Usage.of(otel.process.popen.pid))
    responses = _remote_write_responses(prom)
    print(f"fleet: {BOTS} bots x {TICKS} ticks in {time.monotonic() - started:.1f} s; totals exact")
    print(f"fleet: end-to-end delay (last bot's last record to exact totals in PromQL): {delay:.2f} s")
    print(f"fleet: remote-write answers by status code: {responses}")
    print(f"fleet: metric points accepted by each gateway (the restarted one since its restart): {accepted}")
    for role, runs in sorted(usage.items()):
        text = "; then ".join(f"peak RSS {u.peak_rss_mib:.0f} MiB, CPU {u.cpu_seconds:.1f} s" for u in runs)
        print(f"fleet: {role}: {text}")
    rejected = {code: n for code, n in responses.items() if not code.startswith("2")}
    assert rejected == {}, f"Prometheus refused remote-write requests: {rejected}"
