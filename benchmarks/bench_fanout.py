"""Record once, fan out: recording cost with three backends on, as a ratio to one backend, in one run.

    .venv/bin/python benchmarks/bench_fanout.py            # about 30 s
    .venv/bin/python benchmarks/bench_fanout.py --quick    # fewer rounds

Measures, per call and interleaved round by round (the machine is shared, so only ratios measured
a few milliseconds apart hold):

- tradetel with Prometheus + OTLP + DogStatsD on, divided by tradetel with Prometheus only, for a
  counter ``add`` and a histogram ``record`` with three attributes (target: at most 1.15);
- the stock OpenTelemetry SDK with three readers divided by the SDK with one reader, the same calls
  (what "record once" avoids: each reader keeps its own aggregation);
- everything also as a ratio to ``prometheus_client`` ``Counter.labels(a,b,c).inc()``.

Prints the ratios and writes ``benchmarks/results/fanout-<time>.json`` (the folder is ignored by git).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import logging
import socket
import statistics
import timeit
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import prometheus_client
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import tradetel

TARGET = 1.15
RESULTS = Path(__file__).resolve().parent / "results"
ATTRS = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}
LATENCY_ATTRS = {"exchange": "binance", "symbol": "BTC-USD", "stage": "ack"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tradetel(stack: ExitStack, exporters: list[str], udp_port: int) -> tradetel.Telemetry:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_DOGSTATSD_PORT": str(udp_port),
        "OTEL_EXPORTER_OTLP_TIMEOUT": "200",
    }
    # A long push interval keeps the export thread from stealing CPU in the middle of a timing.
    tel = tradetel.configure(exporters=exporters, prometheus_port=0, export_interval=3600, env=env)
    stack.callback(tel.shutdown, 1.0)
    return tel


def _sdk(readers: int) -> tuple[Any, Any]:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader() for _ in range(readers)])
    meter = provider.get_meter("bench")
    return meter.create_counter("orders.filled"), meter.create_histogram("orders.latency", unit="s")


def subjects(stack: ExitStack) -> dict[str, Callable[[], None]]:
    """Every measured call, keyed by name; the first one is the anchor."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    stack.callback(sink.close)
    one = _tradetel(stack, ["prometheus"], sink.getsockname()[1])
    three = _tradetel(stack, ["prometheus", "otlp", "dogstatsd"], sink.getsockname()[1])
    registry = prometheus_client.CollectorRegistry()
    anchor = prometheus_client.Counter("anchor", "Anchor.", ["a", "b", "c"], registry=registry)
    sdk_one, sdk_three = _sdk(1), _sdk(3)
    return {
        "anchor: prometheus_client Counter.labels(a,b,c).inc()": lambda: anchor.labels("x", "y", "z").inc(),
        "tradetel counter, prometheus only": lambda: one.orders.filled.add(1, **ATTRS),
        "tradetel counter, prometheus+otlp+dogstatsd": lambda: three.orders.filled.add(1, **ATTRS),
        "tradetel histogram, prometheus only": lambda: one.orders.latency.record(0.03, **LATENCY_ATTRS),
        "tradetel histogram, prometheus+otlp+dogstatsd": lambda: three.orders.latency.record(0.03, **LATENCY_ATTRS),
        "SDK counter, 1 reader": lambda: sdk_one[0].add(1, ATTRS),
        "SDK counter, 3 readers": lambda: sdk_three[0].add(1, ATTRS),
        "SDK histogram, 1 reader": lambda: sdk_one[1].record(0.03, LATENCY_ATTRS),
        "SDK histogram, 3 readers": lambda: sdk_three[1].record(0.03, LATENCY_ATTRS),
    }


def measure(calls: dict[str, Callable[[], None]], rounds: int, number: int) -> dict[str, list[float]]:
    """Seconds per call of every subject, one sample per round, subjects rotated between rounds."""
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        gc.collect()
        for name in names[index % len(names) :] + names[: index % len(names)]:
            # The fastest of three: being preempted by another process only ever adds time.
            samples[name].append(min(timeit.repeat(calls[name], number=number, repeat=3)) / number)
    return samples


def ratio(samples: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """Median over rounds of the per-round ratio (both measured moments apart)."""
    return statistics.median(a / b for a, b in zip(samples[numerator], samples[denominator], strict=True))


COMPARISONS = (
    (
        "counter: three backends / one",
        "tradetel counter, prometheus+otlp+dogstatsd",
        "tradetel counter, prometheus only",
    ),
    (
        "histogram: three backends / one",
        "tradetel histogram, prometheus+otlp+dogstatsd",
        "tradetel histogram, prometheus only",
    ),
    ("SDK counter: three readers / one", "SDK counter, 3 readers", "SDK counter, 1 reader"),
    ("SDK histogram: three readers / one", "SDK histogram, 3 readers", "SDK histogram, 1 reader"),
)


def report(samples: dict[str, list[float]]) -> dict[str, Any]:
    anchor = next(iter(samples))
    print(f"\nPer call, median of {len(samples[anchor])} rounds (ratio to the anchor, then ns)")
    for name in samples:
        print(f"  {name:52} {ratio(samples, name, anchor):6.2f}  {statistics.median(samples[name]) * 1e9:8.0f} ns")
    print("\nFan-out cost (same call, more backends)")
    fanout = {}
    for label, numerator, denominator in COMPARISONS:
        value = ratio(samples, numerator, denominator)
        target = TARGET if label.startswith(("counter", "histogram")) else None
        verdict = "" if target is None else f"  target ≤ {target}: {'ok' if value <= target else 'MISSED'}"
        print(f"  {label:40} {value:5.2f}{verdict}")
        fanout[label] = {"ratio": round(value, 3), "target": target, "met": None if target is None else value <= target}
    return {
        "anchor": anchor,
        "per_call": {
            name: {
                "ns": round(statistics.median(s) * 1e9, 1),
                "ratio_to_anchor": round(ratio(samples, name, anchor), 3),
            }
            for name, s in samples.items()
        },
        "fanout": fanout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    # The OTLP endpoint is deliberately closed (no export runs while timing); keep the final flush quiet.
    logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
    logging.getLogger("tradetel").setLevel(logging.ERROR)
    rounds, number = (7, 2_000) if args.quick else (21, 5_000)
    with ExitStack() as stack:
        calls = subjects(stack)
        samples = measure(calls, rounds, number)
    result = report(samples)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"fanout-{stamp}.json"
    result.update({"rounds": rounds, "calls_per_sample": number, "time": stamp})
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
