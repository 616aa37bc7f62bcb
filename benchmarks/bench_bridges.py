"""What living with prometheus_client and the global MeterProvider costs, as ratios measured in the same run.

    .venv/bin/python benchmarks/bench_bridges.py            # about 30 s
    .venv/bin/python benchmarks/bench_bridges.py --quick

Recording (ratio to prometheus_client ``Counter.labels(a,b,c).inc()``): an
instrumentation's counter with 3 attributes on tradetel's MeterProvider,
directly and through the global switch of ``tradetel.otel_global``.

Scrape (ratio to tradetel's own ``render(collect())`` of the same series):
``generate_latest`` of a registry holding :class:`TradetelCollector`; and a
``RegistrySource`` appending a prometheus_client registry, against
``generate_latest`` of that registry alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from opentelemetry import metrics
from prometheus_client import CollectorRegistry, Counter, generate_latest
from timing import Subject, interleaved, median_time

import tradetel
from tradetel.exporters.prometheus import render
from tradetel.exporters.prometheus_client import RegistrySource, TradetelCollector

ANCHOR = "prometheus_client"


def recording(rounds: int, sample_seconds: float) -> None:
    registry = CollectorRegistry()
    anchor = Counter("anchor", "Anchor.", ["a", "b", "c"], registry=registry)
    with tradetel.configure(exporters="none", env={}, set_global_meter_provider=True) as tel:
        direct = tel.meter_provider.get_meter("bench.direct").create_counter("bench.direct")
        switched = metrics.get_meter("bench.global").create_counter("bench.global")
        namespace = {"anchor": anchor, "direct": direct, "switched": switched, "attrs": {"a": "1", "b": "2", "c": "3"}}
        subjects = [
            Subject(ANCHOR, "anchor", "prometheus_client Counter.labels(a,b,c).inc()", "anchor.labels(1, 2, 3).inc()"),
            Subject("direct", "otel", "SDK Counter.add, 3 attributes, tradetel's provider", "direct.add(1, attrs)"),
            Subject("global", "otel", "the same through the global MeterProvider", "switched.add(1, attrs)"),
        ]
        results = interleaved(subjects, namespace, ANCHOR, rounds=rounds, sample_seconds=sample_seconds)
    print("Recording, per call (ratio to prometheus_client Counter.labels(a,b,c).inc())")
    for result in results.values():
        print(f"  {result.subject.label:55} {result.ratio:6.2f}  {result.ns:7.0f} ns")
    print(f"  global / direct: {results['global'].ns / results['direct'].ns:.2f}")


def scrape(series: int, rounds: int) -> None:
    with tradetel.configure(exporters="none", env={}) as tel:
        for index in range(series):
            tel.orders.filled.add(1, exchange=f"x{index % 20}", symbol=f"S{index}", side="buy")
        for index in range(series // 10):
            tel.orders.latency.record(0.01 * (index % 50), exchange=f"x{index % 20}", symbol=f"S{index}")
        own = median_time(lambda: render(tel.collect()), rounds)
        registry = CollectorRegistry()
        registry.register(TradetelCollector(tel))
        bridged = median_time(lambda: generate_latest(registry), rounds)

        bots = CollectorRegistry()
        counter = Counter("bot_events", "Events.", ["kind"], registry=bots)
        for index in range(series):
            counter.labels(f"k{index}").inc()
        alone = median_time(lambda: generate_latest(bots), rounds)
        source = RegistrySource(bots)
        empty = tradetel.configure(exporters="none", env={})
        data = empty.collect()
        appended = median_time(lambda: source(data), rounds)
        empty.shutdown()
    print(f"Scrape, {series} counter + {series // 10} histogram series (median of {rounds})")
    print(f"  tradetel render(collect())                  {own * 1e3:8.1f} ms")
    print(f"  generate_latest with TradetelCollector      {bridged * 1e3:8.1f} ms   ratio {bridged / own:.2f}")
    print(f"  prometheus_client registry, {series} series  {alone * 1e3:8.1f} ms")
    print(f"  the same through RegistrySource             {appended * 1e3:8.1f} ms   ratio {appended / alone:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    recording(rounds=5 if args.quick else 15, sample_seconds=0.01 if args.quick else 0.02)
    scrape(1_000, rounds=3 if args.quick else 7)
    return 0


if __name__ == "__main__":
    sys.exit(main())
