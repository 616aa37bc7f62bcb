"""Capacity of the collector fleet layout: agent and gateway CPU and memory per 1,000 series per second.

For each number of bots N (S series each, one export every INTERVAL seconds), this starts, on 127.0.0.1:
a Prometheus with its remote-write receiver, two gateways (collector/fleet-gateway.yaml) and one agent
(collector/fleet-agent.yaml), then a load generator that runs N OpenTelemetry SDK meter providers in one
process, one per simulated bot, each with its own resource (service.instance.id), its own OTLP/gRPC
exporter to the agent, and S cumulative counter series incremented every second. After a warm-up of two
intervals it reads the collectors' CPU time from /proc, waits WINDOW seconds, reads it again, and checks
in PromQL that all N x S series arrived. Collectors are started afresh for each N, so each peak RSS
belongs to one size.

Run by hand (not in CI; about 2 minutes per size with the defaults):

    .venv/bin/python benchmarks/bench_fleet.py                       # N = 10, 40, 160; S = 250; 10 s
    .venv/bin/python benchmarks/bench_fleet.py --bots 10 20 --series 100 --interval 5 --window 30

It prints a Markdown table (the one in docs/scale-out.md) and writes benchmarks/results/fleet.json.
The generator's own CPU is not counted: only the collectors'.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COLLECTOR = REPO / "collector"
RESULTS = REPO / "benchmarks" / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
METRIC = "bench.load"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


def wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"bench_fleet: timed out waiting for {what}")


class Processes:
    """Started processes, stopped in reverse order."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.home / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.started.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for process in reversed(self.started):
            self.stop(process)


def collector(procs: Processes, binary: Path, name: str, config: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    ports = {
        var: str(free_port()) for var in ("OTLP_GRPC_PORT", "OTLP_HTTP_PORT", "HEALTH_CHECK_PORT", "TELEMETRY_PORT")
    }
    env = {**ports, "STATSD_PORT": str(free_port()), "COLLECTOR_LISTEN_HOST": "127.0.0.1", **env}
    process = procs.start(name, [str(binary), f"--config={COLLECTOR / config}"], env)
    process.otlp = f"127.0.0.1:{env['OTLP_GRPC_PORT']}"  # type: ignore[attr-defined]
    process.telemetry = f"http://127.0.0.1:{env['TELEMETRY_PORT']}/metrics"  # type: ignore[attr-defined]
    health = f"http://127.0.0.1:{env['HEALTH_CHECK_PORT']}/"
    wait_for(lambda: process.poll() is None and get(health), f"{name} to start")
    return process


def accepted_points(telemetry_url: str) -> float:
    """Metric points a collector's receivers accepted so far, from its own telemetry."""
    total = 0.0
    for line in get(telemetry_url).decode().splitlines():
        if line.startswith("otelcol_receiver_accepted_metric_points"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def promql(url: str, expr: str) -> list[dict[str, Any]]:
    body = json.loads(get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"))
    return list(body["data"]["result"])


@dataclass
class Figures:
    bots: int
    series_per_bot: int
    interval_s: float
    series_per_s: float  # nominal: bots x series / interval
    measured_points_per_s: float  # what the agent accepted during the window
    delivered_series: int
    agent_cores: float
    gateway_cores: float  # both gateways together
    agent_rss_mib: float
    gateway_rss_mib: float  # the larger of the two
    agent_peak_rss_mib: float
    gateway_peak_rss_mib: float

    def per_1k(self, value: float) -> float:
        """``value`` per 1,000 points a second, at the rate the agent measured."""
        return value / (self.measured_points_per_s / 1000)


def measure(
    binary: Path, prometheus: str, home: Path, bots: int, series: int, interval: float, window: float
) -> Figures:
    procs = Processes(home)
    try:
        remote_write = f"{prometheus}/api/v1/write"
        gateways = [
            collector(procs, binary, f"n{bots}-gateway{i}", "fleet-gateway.yaml", {"REMOTE_WRITE_URL": remote_write})
            for i in range(2)
        ]
        endpoints = "[" + ", ".join(g.otlp for g in gateways) + "]"  # type: ignore[attr-defined]
        agent = collector(procs, binary, f"n{bots}-agent", "fleet-agent.yaml", {"GATEWAY_ENDPOINTS": endpoints})
        generator = procs.start(
            f"n{bots}-generator",
            [sys.executable, __file__, "--generate", agent.otlp, str(bots), str(series), str(interval)],  # type: ignore[attr-defined]
        )
        time.sleep(2 * interval + 5)
        if generator.poll() is not None:
            raise SystemExit(f"bench_fleet: the load generator exited; see {home}/n{bots}-generator.log")
        watched = [agent, *gateways]
        points_before = accepted_points(agent.telemetry)  # type: ignore[attr-defined]
        before = [cpu_seconds(p.pid) for p in watched]
        time.sleep(window)
        after = [cpu_seconds(p.pid) for p in watched]
        points_after = accepted_points(agent.telemetry)  # type: ignore[attr-defined]
        memory = [memory_mib(p.pid) for p in watched]
        job = f"fleet-bench-{bots}"
        delivered = promql(prometheus, f'count({{__name__="bench_load_total",job="{job}"}})')
        cores = [(a - b) / window for a, b in zip(after, before, strict=True)]
        return Figures(
            bots=bots,
            series_per_bot=series,
            interval_s=interval,
            series_per_s=bots * series / interval,
            measured_points_per_s=(points_after - points_before) / window,
            delivered_series=int(float(delivered[0]["value"][1])) if delivered else 0,
            agent_cores=cores[0],
            gateway_cores=cores[1] + cores[2],
            agent_rss_mib=memory[0][0],
            gateway_rss_mib=max(memory[1][0], memory[2][0]),
            agent_peak_rss_mib=memory[0][1],
            gateway_peak_rss_mib=max(memory[1][1], memory[2][1]),
        )
    finally:
        procs.stop_all()


def generate(endpoint: str, bots: int, series: int, interval: float) -> None:
    """The load generator: ``bots`` meter providers with ``series`` counter series each, until SIGTERM."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    providers, counters = [], []
    for index in range(bots):
        exporter = OTLPMetricExporter(endpoint=f"http://{endpoint}", insecure=True)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval * 1000)
        resource = Resource.create({"service.name": f"fleet-bench-{bots}", "service.instance.id": f"bot-{index}"})
        provider = MeterProvider(metric_readers=[reader], resource=resource)
        providers.append(provider)
        counters.append(provider.get_meter("bench").create_counter(METRIC, unit="1"))
    labels = [{"series": str(i)} for i in range(series)]
    while not stop:
        for counter in counters:
            for attributes in labels:
                counter.add(1, attributes)
        time.sleep(1.0)
    for provider in providers:
        provider.shutdown()


def table(results: list[Figures]) -> str:
    lines = [
        "| bots x series | series/s (measured) | agent CPU | gateways CPU | agent RSS (peak) "
        "| largest gateway RSS (peak) | per 1,000 series/s: agent CPU, gateways CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in results:
        lines.append(
            f"| {f.bots} x {f.series_per_bot} | {f.series_per_s:,.0f} ({f.measured_points_per_s:,.0f}) "
            f"| {f.agent_cores * 1000:.1f} m "
            f"| {f.gateway_cores * 1000:.1f} m | {f.agent_rss_mib:.0f} MiB ({f.agent_peak_rss_mib:.0f}) "
            f"| {f.gateway_rss_mib:.0f} MiB ({f.gateway_peak_rss_mib:.0f}) "
            f"| {f.per_1k(f.agent_cores) * 1000:.1f} m, {f.per_1k(f.gateway_cores) * 1000:.1f} m |"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command line of the benchmark (the load generator's --generate is internal)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, nargs="+", default=[10, 40, 160], help="sizes of N (default 10 40 160)")
    parser.add_argument("--series", type=int, default=250, help="series per bot (default 250)")
    parser.add_argument("--interval", type=float, default=10.0, help="export interval, s (default 10, tradetel's)")
    parser.add_argument("--window", type=float, default=60.0, help="measurement window, s (default 60)")
    return parser


def main(argv: list[str]) -> int:
    if argv[:1] == ["--generate"]:
        endpoint, bots, series, interval = argv[1], int(argv[2]), int(argv[3]), float(argv[4])
        generate(endpoint, bots, series, interval)
        return 0
    args = parser().parse_args(argv)

    built = subprocess.run(["bash", str(COLLECTOR / "build.sh"), "core"], capture_output=True, text=True, check=True)
    binary = Path(built.stdout.strip().splitlines()[-1])
    prometheus_binary = shutil.which("prometheus")
    if prometheus_binary is None:
        raise SystemExit("bench_fleet: prometheus is not on PATH (Debian package prometheus)")
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        home = Path(tmp)
        procs = Processes(home)
        try:
            port = free_port()
            (home / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n")
            procs.start(
                "prometheus",
                [
                    prometheus_binary,
                    f"--config.file={home / 'prometheus.yml'}",
                    f"--storage.tsdb.path={home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--web.enable-remote-write-receiver",
                    "--log.level=warn",
                ],
            )
            prometheus = f"http://127.0.0.1:{port}"
            wait_for(lambda: get(f"{prometheus}/-/ready"), "Prometheus to start")
            for bots in args.bots:
                figures = measure(binary, prometheus, home, bots, args.series, args.interval, args.window)
                results.append(figures)
                print(json.dumps(asdict(figures)), flush=True)
                if figures.delivered_series != bots * args.series:
                    print(f"bench_fleet: only {figures.delivered_series} of {bots * args.series} series arrived")
        finally:
            procs.stop_all()
    print(table(results))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fleet.json").write_text(json.dumps([asdict(f) for f in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
