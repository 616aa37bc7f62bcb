"""Recording cost while a backend is down, as ratios to the same calls with every backend up, in one run.

    .venv/bin/python benchmarks/bench_faults.py            # about 40 s
    .venv/bin/python benchmarks/bench_faults.py --quick    # fewer rounds

Each condition is a Telemetry with Prometheus, OTLP/HTTP or OTLP/gRPC, and DogStatsD on, pushing every
100 ms (a hundred times the default rate, so that the export thread's work in a failing state weighs as
much as it can on the recording thread):

- ``healthy``: OTLP/HTTP to a local sink that answers 200, DogStatsD to a bound UDP socket;
- ``collector dead (http)`` / ``collector dead (grpc)``: OTLP to a closed port, DogStatsD healthy;
- ``statsd port closed``: OTLP healthy, DogStatsD to a closed UDP port.

Every round builds each condition afresh, lets it run its failing exports for a moment, then times a
counter ``add`` and a histogram ``record`` with three attributes, and the anchor,
``prometheus_client`` ``Counter.labels(a,b,c).inc()``, in the same window. Reported: the median of
per-round ratios to the anchor, their interquartile range, and each condition relative to ``healthy``.
Nothing is asserted; the result goes to ``benchmarks/results/faults-<time>.json`` (ignored by git).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import logging
import socket
import statistics
import sys
import time
import timeit
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import prometheus_client

import tradetel
from tradetel.testing import Capture

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recording import _otlp_sink, _udp_sink

RESULTS = Path(__file__).resolve().parent / "results"
ATTRS = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}
STATEMENTS = {
    "counter add": 'tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")',
    "histogram record": 'tel.orders.latency.record(0.012, exchange="binance", symbol="BTC-USD", stage="ack")',
}
ANCHOR = 'anchor.labels("binance", "BTC-USD", "buy").inc()'


def _closed_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def conditions(stack: ExitStack) -> dict[str, dict[str, str]]:
    """The environment of each condition (healthy first)."""
    sink, udp = _otlp_sink(stack), _udp_sink(stack)
    healthy = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.removesuffix("/v1/metrics"),  # a base URL: the path is appended
        "OTEL_EXPORTER_OTLP_TIMEOUT": "300",  # a failing export gives up at once instead of backing off
        "DD_DOGSTATSD_URL": f"udp://127.0.0.1:{udp}",
    }
    dead = f"http://127.0.0.1:{_closed_tcp_port()}"
    return {
        "healthy": healthy,
        "collector dead (http)": {**healthy, "OTEL_EXPORTER_OTLP_ENDPOINT": dead},
        "collector dead (grpc)": {
            **healthy,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": dead,
        },
        "statsd port closed": {**healthy, "DD_DOGSTATSD_URL": f"udp://127.0.0.1:{_closed_udp_port()}"},
    }


def _fastest(stmt: str, namespace: dict[str, Any], number: int, repeat: int = 3) -> float:
    return min(timeit.Timer(stmt, globals=namespace).repeat(repeat, number)) / number


def _calibrate(stmt: str, namespace: dict[str, Any], sample_seconds: float) -> int:
    number = 1000
    elapsed = timeit.Timer(stmt, globals=namespace).timeit(number)
    return max(1000, int(number * sample_seconds / max(elapsed, 1e-9)))


def measure_round(
    envs: dict[str, dict[str, str]], anchor: Any, numbers: dict[str, int], order: list[str], settle: float
) -> dict[str, dict[str, float]]:
    """One round: each condition built, settled, timed against the anchor, shut down. Ratios to the anchor."""
    ratios: dict[str, dict[str, float]] = {}
    for condition in order:
        tel = tradetel.configure(
            exporters=["prometheus", "otlp", "dogstatsd"], prometheus_port=0, export_interval=0.1, env=envs[condition]
        )
        try:
            namespace = {"tel": tel, "anchor": anchor}
            tel.orders.filled.add(1, **ATTRS)  # something to export from the start
            time.sleep(settle)  # a few exports, failing ones in the faulty conditions, before the timing
            gc.collect()
            anchor_seconds = _fastest(ANCHOR, namespace, numbers["anchor"])
            ratios[condition] = {
                label: _fastest(stmt, namespace, numbers[label]) / anchor_seconds for label, stmt in STATEMENTS.items()
            }
            ratios[condition]["failed exports"] = Capture(tel).value("tradetel.export.failures")
        finally:
            tel.shutdown(timeout=1.0)
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 15")
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else 15
    logging.disable(logging.CRITICAL)  # the failing exporters log every attempt; not what is measured here

    registry = prometheus_client.CollectorRegistry()
    anchor = prometheus_client.Counter("anchor", "Anchor.", ["a", "b", "c"], registry=registry)
    with ExitStack() as stack:
        envs = conditions(stack)
        probe = tradetel.configure(exporters="none")
        namespace = {"tel": probe, "anchor": anchor}
        numbers = {label: _calibrate(stmt, namespace, 0.01) for label, stmt in STATEMENTS.items()}
        numbers["anchor"] = _calibrate(ANCHOR, namespace, 0.01)
        probe.shutdown()
        names = list(envs)
        per_round: list[dict[str, dict[str, float]]] = []
        for index in range(rounds):
            print(f"round {index + 1}/{rounds}", file=sys.stderr, flush=True)
            order = names[index % len(names) :] + names[: index % len(names)]
            per_round.append(measure_round(envs, anchor, numbers, order, settle=0.6))
    report = summarize(per_round, names)
    print(table(report))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"faults-{stamp}.json"
    path.write_text(json.dumps({"rounds": rounds, "conditions": report}, indent=2))
    print(f"\nwritten to {path.relative_to(RESULTS.parent.parent)}")
    return 0


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 4:
        return min(values), max(values)
    low, _, high = statistics.quantiles(values, n=4)
    return low, high


def summarize(per_round: list[dict[str, dict[str, float]]], names: list[str]) -> dict[str, Any]:
    """Median ratio to the anchor and to ``healthy`` (per round, then the median) for each condition and call."""
    report: dict[str, Any] = {}
    for name in names:
        row: dict[str, Any] = {
            "failed_exports_per_round": statistics.median(r[name]["failed exports"] for r in per_round)
        }
        for label in STATEMENTS:
            to_anchor = [r[name][label] for r in per_round]
            to_healthy = [r[name][label] / r["healthy"][label] for r in per_round]
            row[label] = {
                "ratio_to_anchor": round(statistics.median(to_anchor), 3),
                "anchor_iqr": [round(v, 3) for v in _quartiles(to_anchor)],
                "ratio_to_healthy": round(statistics.median(to_healthy), 3),
                "healthy_iqr": [round(v, 3) for v in _quartiles(to_healthy)],
            }
        report[name] = row
    return report


def _cell(figures: dict[str, Any], key: str, iqr: str) -> str:
    low, high = figures[iqr]
    return f"{figures[key]:.2f} ({low:.2f}..{high:.2f})"


def table(report: dict[str, Any]) -> str:
    out = [
        "| condition | call | ratio to anchor (IQR) | ratio to healthy (IQR) | failed exports in a round |",
        "|---|---|---|---|---|",
    ]
    for name, row in report.items():
        for label in STATEMENTS:
            figures = row[label]
            out.append(
                f"| {name} | {label} | {_cell(figures, 'ratio_to_anchor', 'anchor_iqr')} | "
                f"{_cell(figures, 'ratio_to_healthy', 'healthy_iqr')} | {row['failed_exports_per_round']:g} |"
            )
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
