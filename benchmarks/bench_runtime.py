"""What the runtime metrics add to a collection (a scrape or a push), as ratios to the same collection without them.

    .venv/bin/python benchmarks/bench_runtime.py            # about 30 s
    .venv/bin/python benchmarks/bench_runtime.py --quick    # fewer rounds

Two Telemetry objects hold the same 1,000 series (a counter and a histogram with three attributes);
one registers the runtime metrics (the default), the other does not (``runtime_metrics=False``).
Subjects, interleaved round by round (see ``timing.py``):

- ``collect, no runtime metrics`` (the anchor) and ``collect, runtime metrics``: ``tel.collect()``;
- the same two as a full scrape: ``render(tel.collect())``, what ``/metrics`` serves;
- ``runtime callbacks alone``: the registered callbacks called directly, the cost they add;
- ``empty collect`` with and without runtime metrics: a bot with almost nothing recorded.

The recording path is not measured: the runtime metrics add nothing to it (no instrument of theirs is
recorded from the bot's thread). Nothing is asserted; the result goes to
``benchmarks/results/runtime-<time>.json`` (ignored by git).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

from timing import Subject, interleaved

import tradetel
from tradetel.catalog import Attribute, InstrumentSpec, Kind
from tradetel.exporters.prometheus import render
from tradetel.labels import Free

SERIES = 1000


def _telemetry(runtime_metrics: bool, series: int) -> tradetel.Telemetry:
    attributes = tuple(Attribute(key, Free()) for key in ("exchange", "symbol", "side"))
    specs = [
        InstrumentSpec("bench.fills", Kind.COUNTER, "{fill}", "Fills.", attributes, cardinality_limit=series + 1),
        InstrumentSpec(
            "bench.latency",
            Kind.HISTOGRAM,
            "s",
            "Latency.",
            attributes,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
            cardinality_limit=series + 1,
        ),
    ]
    tel = tradetel.configure(catalog=specs, exporters="none", runtime_metrics=runtime_metrics, env={})
    for i in range(series):
        labels = {"exchange": f"venue{i % 10}", "symbol": f"SYM{i // 20}", "side": ("buy", "sell")[i % 2]}
        tel["bench.fills"].add(1, **labels)
        tel["bench.latency"].record(0.01 * (i % 7), **labels)
    return tel


def _callbacks(tel: tradetel.Telemetry) -> list[Any]:
    """The callbacks of the runtime instruments registered on ``tel``'s meter."""
    from tradetel.runtime import RUNTIME_METRICS

    names = {metric.name for metric in RUNTIME_METRICS}
    consumer = getattr(tel._reader._collect, "__self__", None)
    instruments = getattr(consumer, "_async_instruments", ())
    return [callback for i in instruments if i.name in names for callback in i._callbacks]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 15")
    args = parser.parse_args()
    rounds = 5 if args.quick else 15

    on, off = _telemetry(True, SERIES), _telemetry(False, SERIES)
    empty_on, empty_off = _telemetry(True, 0), _telemetry(False, 0)
    callbacks = _callbacks(on)
    assert len(callbacks) >= 7, "runtime metrics not found on the meter"
    namespace: dict[str, Any] = {
        "on": on,
        "off": off,
        "empty_on": empty_on,
        "empty_off": empty_off,
        "render": render,
        "callbacks": callbacks,
        "options": None,
    }
    subjects = [
        Subject("collect_off", "collect", f"collect, {SERIES} series, no runtime metrics (anchor)", "off.collect()"),
        Subject("collect_on", "collect", f"collect, {SERIES} series, runtime metrics", "on.collect()"),
        Subject(
            "scrape_off", "scrape", f"render(collect), {SERIES} series, no runtime metrics", "render(off.collect())"
        ),
        Subject("scrape_on", "scrape", f"render(collect), {SERIES} series, runtime metrics", "render(on.collect())"),
        Subject("callbacks", "runtime", "runtime callbacks alone", "for c in callbacks: c(options)"),
        Subject("empty_off", "empty", "collect, nothing recorded, no runtime metrics", "empty_off.collect()"),
        Subject("empty_on", "empty", "collect, nothing recorded, runtime metrics", "empty_on.collect()"),
    ]
    results = interleaved(
        subjects,
        namespace,
        "collect_off",
        rounds=rounds,
        sample_seconds=0.05,
        progress=lambda text: print(text, file=sys.stderr),
    )
    for tel in (on, off, empty_on, empty_off):
        tel.shutdown()

    print(f"{'subject':<58} {'µs/call':>9} {'ratio':>7}  IQR")
    for result in results.values():
        low, high = result.spread
        print(f"{result.subject.label:<58} {result.ns / 1000:>9.1f} {result.ratio:>7.3f}  {low:.3f}-{high:.3f}")
    scrape = results["scrape_on"].ratio / results["scrape_off"].ratio
    empty = results["empty_on"].ratio / results["empty_off"].ratio
    print(f"scrape with runtime metrics / without: {scrape:.3f}; empty collect with / without: {empty:.3f}")

    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"runtime-{stamp}.json"
    path.write_text(json.dumps({"results": [r.as_json() for r in results.values()]}, indent=2))
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
