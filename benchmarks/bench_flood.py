"""Label flood: what the Prometheus exposition and the recording path cost after floods of growing size.

    .venv/bin/python benchmarks/bench_flood.py            # floods of 100,000 and 1,000,000, about a minute
    .venv/bin/python benchmarks/bench_flood.py --quick    # floods of 30,000 and 300,000

Each flood is the one of ``tests/test_flood.py``, at the given size, with Prometheus, OTLP (to a closed
port) and DogStatsD (to a local UDP socket nobody reads) on: a third market data updates whose
symbols are junk (100,000 distinct) around a steady stream of BTC-USD and ETH-USD, a third order
rejections with those symbols and a unique free-text reason each, a third rate-limit checks from
unique client addresses. For every size it reports, as ratios to anchors measured in the same run:

- the recording cost per measurement, against ``prometheus_client`` ``Counter.labels(a,b,c).inc()``;
- the exposition size and the scrape time of ``/metrics`` (HTTP GET, median of 5), against
  ``prometheus_client.generate_latest`` of a registry with as many counter series;
- the series per flooded instrument, and how many attribute sets the flood would have made without
  label policies and series limits.

Bounded means the exposition and the scrape do not grow with the flood: compare the two sizes. Nothing
is asserted (``tests/test_flood.py`` asserts the bounds); the figures go to
``benchmarks/results/flood-<time>.json`` (the folder is ignored by git).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import ipaddress
import json
import logging
import random
import socket
import statistics
import sys
import time
import timeit
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prometheus_client

import tradetel
from tradetel.views import series_limit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import median_time

RESULTS = Path(__file__).resolve().parent / "results"
JUNK_SYMBOLS = 100_000
FLOODED = ("market_data.updates", "orders.rejected", "security.rate_limited")
REASONS = ("Insufficient balance", "max position", "position_sizing", "stop_validation", "NetworkError", "odd")


def _anchor_ns(rounds: int = 7) -> float:
    """Median ns of prometheus_client ``Counter.labels(a,b,c).inc()``, fastest of three per round."""
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("anchor", "Anchor.", ["a", "b", "c"], registry=registry)
    samples = [
        min(timeit.repeat(lambda: counter.labels("x", "y", "z").inc(), number=20_000, repeat=3)) / 20_000
        for _ in range(rounds)
    ]
    return statistics.median(samples) * 1e9


def _inputs(size: int, seed: int = 20240611) -> tuple[list[str], list[str], list[str]]:
    """Symbols (one in five BTC-USD, one in five ETH-USD, the rest junk), reasons and client addresses."""
    rng = random.Random(seed)
    symbol_count = len(range(0, size, 3)) + len(range(1, size, 3))
    symbols = [
        "BTC-USD" if i % 5 == 0 else "ETH-USD" if i % 5 == 1 else f"JUNK{rng.randrange(JUNK_SYMBOLS):05d}|x"
        for i in range(symbol_count)
    ]
    reasons = [f"{rng.choice(REASONS)} #{rng.getrandbits(40):x}" for _ in range(len(range(1, size, 3)))]
    third = len(range(2, size, 3))
    clients = [str(ipaddress.IPv4Address(a)) for a in rng.sample(range(1 << 24, 0xE0000000), third)]
    return symbols, reasons, clients


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flood(tel: tradetel.Telemetry, size: int) -> tuple[float, int]:
    """Record the flood; seconds spent and the distinct attribute sets it would make without any policy."""
    symbols, reasons, clients = _inputs(size)
    updates = tel.market_data.updates.add
    rejected = tel.orders.rejected.add
    limited = tel.security.rate_limited.add
    gc.collect()
    start = time.perf_counter()
    for i in range(size):
        kind = i % 3
        if kind == 0:
            updates(1, symbol=symbols[i // 3 * 2], source="websocket")
        elif kind == 1:
            rejected(1, exchange="binance", symbol=symbols[i // 3 * 2 + 1], side="buy", reason=reasons[i // 3])
        else:
            limited(1, client=clients[i // 3], route="/webhook")
    elapsed = time.perf_counter() - start
    unguarded = len(set(symbols[0::2])) + len(reasons) + len(clients)
    return elapsed, unguarded


def _reference_scrape_ms(series: int) -> float:
    """``generate_latest`` of a prometheus_client registry holding ``series`` counter series (3 labels)."""
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("reference", "Reference.", ["a", "b", "c"], registry=registry)
    for i in range(series):
        counter.labels(f"venue{i % 10}", f"SYM{i}", "buy").inc()
    return median_time(lambda: prometheus_client.generate_latest(registry), 5) * 1000


def run_size(size: int, udp_port: int) -> dict[str, Any]:
    """One flood of ``size`` measurements into a fresh Telemetry with all three backends on."""
    tel = tradetel.configure(
        exporters="prometheus,otlp,dogstatsd",
        env={},
        service_name="flood-bench",
        prometheus_port=0,
        otlp_endpoint=f"http://127.0.0.1:{_closed_port()}",
        otlp_timeout=0.2,
        dogstatsd_url=f"udp://127.0.0.1:{udp_port}",
        export_interval=5.0,
        export_timeout=1.0,
    )
    try:
        anchor_before = _anchor_ns()
        seconds, unguarded = _flood(tel, size)
        anchor_after = _anchor_ns()
        assert tel.prometheus_url is not None
        url = tel.prometheus_url

        def scrape() -> bytes:
            with urllib.request.urlopen(url, timeout=60) as response:
                return bytes(response.read())

        body = scrape()
        scrape_ms = median_time(scrape, 5) * 1000
        data = tel.collect()
        series = {
            metric.name: len(metric.data.data_points)
            for resource_metrics in data.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        }
        total_series = sum(series.values())
        reference_ms = _reference_scrape_ms(total_series)
        anchor = statistics.mean((anchor_before, anchor_after))
        per_measurement_ns = seconds / size * 1e9
        limit = tel.settings.cardinality_limit
        return {
            "measurements": size,
            "recording_ns": round(per_measurement_ns),
            "recording_ratio_to_anchor": round(per_measurement_ns / anchor, 2),
            "anchor_ns": round(anchor),
            "exposition_bytes": len(body),
            "scrape_ms": round(scrape_ms, 2),
            "scrape_ratio_to_prometheus_client": round(scrape_ms / reference_ms, 2),
            "prometheus_client_scrape_ms": round(reference_ms, 2),
            "series_total": total_series,
            "series": {
                name: {
                    "series": series.get(tel.catalog.full_name(tel.catalog[name]), 0),
                    "limit_plus_overflow": series_limit(tel.catalog[name], limit) + 1,
                }
                for name in FLOODED
            },
            "attribute_sets_without_policies": unguarded,
        }
    finally:
        tel.shutdown(timeout=1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="floods of 30,000 and 300,000 measurements")
    args = parser.parse_args(argv)
    logging.getLogger("tradetel").setLevel(logging.ERROR)  # the overflow warning is expected here
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)  # OTLP retries to the closed port
    sizes = (30_000, 300_000) if args.quick else (100_000, 1_000_000)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    rows: list[dict[str, Any]] = []
    try:
        for size in sizes:
            rows.append(run_size(size, sink.getsockname()[1]))
    finally:
        sink.close()
    _print(rows)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"flood-{stamp}.json"
    path.write_text(json.dumps({"tradetel": tradetel.__version__, "floods": rows}, indent=2) + "\n")
    print(f"\nwritten to {path.relative_to(RESULTS.parent.parent)}")
    return 0


def _print(rows: list[dict[str, Any]]) -> None:
    columns: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("measurements", lambda r: f"{r['measurements']:,}"),
        ("attribute sets w/o policies", lambda r: f"{r['attribute_sets_without_policies']:,}"),
        ("series", lambda r: f"{r['series_total']:,}"),
        ("exposition bytes", lambda r: f"{r['exposition_bytes']:,}"),
        ("scrape ms", lambda r: f"{r['scrape_ms']:.1f}"),
        ("scrape / prometheus_client", lambda r: f"{r['scrape_ratio_to_prometheus_client']:.2f}"),
        ("record / anchor", lambda r: f"{r['recording_ratio_to_anchor']:.2f}"),
    ]
    print("\nLabel flood, Prometheus + OTLP + DogStatsD on (ratios to anchors measured in the same run)")
    print("  " + "  ".join(f"{title:>{max(len(title), 12)}}" for title, _ in columns))
    for row in rows:
        print("  " + "  ".join(f"{cell(row):>{max(len(title), 12)}}" for title, cell in columns))
    print("\nSeries per flooded instrument (limit L + 1 overflow series)")
    for row in rows:
        parts = [f"{name} {v['series']:,}/{v['limit_plus_overflow']:,}" for name, v in row["series"].items()]
        print(f"  {row['measurements']:>9,}: " + ", ".join(parts))


if __name__ == "__main__":
    sys.exit(main())
