"""OpenMetrics and gzip cost of a scrape, as ratios to the text 0.0.4 render of the same collection.

    .venv/bin/python benchmarks/bench_openmetrics.py            # about 20 s
    .venv/bin/python benchmarks/bench_openmetrics.py --quick    # 1k series only, fewer rounds

For a counter and a histogram with 1k and 10k series (3 attributes), one collection is rendered
round by round, interleaved: ``render`` (text 0.0.4, the anchor), ``render_openmetrics``, and text
then ``gzip.compress`` (what a scrape with ``Accept-Encoding: gzip`` costs on top). Prints the median
ratio of each to the text render of the same round, and the compressed size.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scrape import TradetelSeries, series_labels


def _time(run: Callable[..., object], *args: object, **kwargs: object) -> float:
    gc.collect()
    start = timeit.default_timer()
    run(*args, **kwargs)
    return timeit.default_timer() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    from tradetel.exporters.prometheus import render, render_openmetrics

    sizes = (1_000,) if args.quick else (1_000, 10_000)
    rounds = 5 if args.quick else 11
    header = f"{'kind':10} {'series':>7} {'text ms':>8} {'OpenMetrics/text':>17} {'gzip/text':>10}"
    print(f"{header} {'bytes':>10} {'gz':>8}")
    for kind in ("counter", "histogram"):
        for size in sizes:
            subject = TradetelSeries(2 * size)
            try:
                subject.fill(kind, series_labels(size))
                data = subject.telemetry.collect()
                text = render(data)
                ratios_om, ratios_gz, texts = [], [], []
                for _ in range(rounds):
                    t_text = _time(render, data)
                    t_om = _time(render_openmetrics, data)
                    t_gz = _time(gzip.compress, text, compresslevel=6)
                    texts.append(t_text)
                    ratios_om.append(t_om / t_text)
                    ratios_gz.append(t_gz / t_text)
            finally:
                subject.close()
            compressed = len(gzip.compress(text, compresslevel=6))
            print(
                f"{kind:10} {size:>7} {statistics.median(texts) * 1e3:>8.1f} {statistics.median(ratios_om):>17.2f} "
                f"{statistics.median(ratios_gz):>10.2f} {len(text):>10} {compressed:>8}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
