"""tradetel's benchmark suite: one command, ratios to an anchor measured in the same run.

    .venv/bin/python benchmarks/run.py            # full run, about a minute
    .venv/bin/python benchmarks/run.py --quick    # fewer rounds, smaller scrapes
    .venv/bin/python benchmarks/run.py --with-others   # then bench_fanout.py, bench_decorators.py...

Prints every figure as a ratio to ``prometheus_client``
``Counter.labels(a,b,c).inc()`` measured in the same rounds, checks the
targets, and writes ``benchmarks/results/latest.json``. See
``benchmarks/README.md`` and ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recording
import scrape
from timing import Result, interleaved

RESULTS = Path(__file__).resolve().parent / "results"
SCRAPE_TARGET = 1.0
PACKAGES = ("tradetel", "opentelemetry-sdk", "prometheus-client", "datadog")


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _status(ratio: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"≤ {target:g}  {'ok' if ratio <= target else 'MISSED'}"


def print_recording(results: dict[str, Result]) -> None:
    print("\nRecording, per call (ratio to prometheus_client Counter.labels(a,b,c).inc(), median of rounds)")
    print(f"{'':2}{'call':58} {'ratio':>7} {'IQR':>13} {'ns':>8}  target")
    group = None
    for result in results.values():
        subject = result.subject
        if subject.group != group:
            group = subject.group
            print(f"{group}")
        low, high = result.spread
        print(
            f"  {subject.label:58} {result.ratio:7.2f} {f'{low:.2f}-{high:.2f}':>13} {result.ns:8.0f}  "
            f"{_status(result.ratio, subject.target)}"
        )


def print_scrape(rows: list[dict[str, Any]]) -> None:
    print("\nScrape: render(collect()) vs prometheus_client generate_latest() of the same series")
    header = f"{'kind':10} {'series':>7} {'tradetel ms':>12} {'(collect)':>10} {'prom ms':>9} {'ratio':>6}"
    print(f"  {header} {'µs/series':>10} {'public path ms':>15}")
    for row in rows:
        target = SCRAPE_TARGET if row["kind"] == "histogram" and row["series"] >= 10_000 else None
        stock = row.get("otel_prometheus_exporter_us_per_series")
        print(
            f"  {row['kind']:10} {row['series']:>7} {row['tradetel_ms']:>12.1f} {row['tradetel_collect_ms']:>10.1f} "
            f"{row['prometheus_client_ms']:>9.1f} {row['ratio']:>6.2f} {row['tradetel_us_per_series']:>10.1f} "
            f"{row.get('tradetel_public_ms', 0.0):>15.1f}  {_status(row['ratio'], target)}"
            + (f"  (stock OTel exporter: {stock:.0f} µs/series)" if stock else "")
        )


def print_memory(rows: list[dict[str, Any]]) -> None:
    print("\nMemory per series (tracemalloc, bytes)")
    print(f"  {'kind':10} {'tradetel':>9} {'public path':>12} {'prometheus_client':>18} {'OTel SDK, 1 reader':>19}")
    for row in rows:
        print(
            f"  {row['kind']:10} {row['tradetel_bytes']:>9} {row['tradetel_public_bytes']:>12} "
            f"{row['prometheus_client_bytes']:>18} {row['otel_sdk_1_reader_bytes']:>19}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, scrapes at 1k series only")
    parser.add_argument("--rounds", type=int, default=None, help="recording rounds (default 15, quick 5)")
    parser.add_argument("--no-scrape", action="store_true", help="skip the scrape section")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory section")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json", help="result file")
    parser.add_argument(
        "--with-others", action="store_true", help="then run the focused benchmarks (bench_*.py), each on its own"
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 15)
    sample_seconds = 0.01 if args.quick else 0.02

    print(f"tradetel benchmarks: Python {platform.python_version()}, {os.cpu_count()} CPUs, {rounds} rounds")
    with ExitStack() as stack:
        subjects, namespace, setup = recording.build(stack)
        print(f"tradetel backends on: {', '.join(setup['tradetel_exporters'])}")
        results = interleaved(
            subjects,
            namespace,
            recording.ANCHOR,
            rounds=rounds,
            sample_seconds=sample_seconds,
            progress=lambda message: print(f"\r  recording: {message}", end="", flush=True),
        )
        print()
    print_recording(results)

    scrape_rows: list[dict[str, Any]] = []
    if not args.no_scrape:
        sizes = (1_000,) if args.quick else (1_000, 10_000)
        print("\n  scraping...", flush=True)
        scrape_rows = scrape.scrape_costs(sizes, rounds=3 if args.quick else 5, stock_otel_sizes=(1_000,))
        print_scrape(scrape_rows)
    memory_rows: list[dict[str, Any]] = []
    if not args.no_memory:
        memory_rows = scrape.memory_per_series(1_000 if args.quick else 5_000)
        print_memory(memory_rows)

    missed = [r.subject.key for r in results.values() if r.subject.target is not None and r.ratio > r.subject.target]
    missed += [
        f"scrape.{row['kind']}.{row['series']}"
        for row in scrape_rows
        if row["kind"] == "histogram" and row["series"] >= 10_000 and row["ratio"] > SCRAPE_TARGET
    ]
    document = {
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "anchor": recording.ANCHOR,
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "packages": _versions(),
        },
        "settings": {"rounds": rounds, "sample_seconds": sample_seconds, "quick": args.quick, **setup},
        "recording": [r.as_json() for r in results.values()],
        "scrape": scrape_rows,
        "scrape_target": SCRAPE_TARGET,
        "memory": memory_rows,
        "missed_targets": missed,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(document))
    print(f"\nwrote {args.output} and {args.output.with_suffix('.md').name} (the tables as Markdown)")
    print("targets: all met" if not missed else f"targets missed: {', '.join(missed)}")
    if args.with_others:
        run_others(args.quick)
    return 0


def markdown(document: dict[str, Any]) -> str:
    """The result tables as Markdown, for docs/performance.md."""
    out = ["| call | ratio | IQR | ns/call | target |", "|---|---:|---:|---:|---|"]
    group = None
    for row in document["recording"]:
        if row["group"] != group:
            group = row["group"]
            out.append(f"| **{group}** | | | | |")
        low, high = row["ratio_iqr"]
        target = "" if row["target"] is None else f"≤ {row['target']:g} {'✓' if row['met'] else '✗'}"
        label = row["label"].replace("|", "\\|")
        out.append(f"| {label} | {row['ratio']:.2f} | {low:.2f}-{high:.2f} | {row['ns_per_call']:.0f} | {target} |")
    if document["scrape"]:
        out += [
            "",
            "| scrape | series | tradetel ms (collect) | prometheus_client ms | ratio | tradetel µs/series "
            "| stock OTel exporter µs/series | public path ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in document["scrape"]:
            stock = row.get("otel_prometheus_exporter_us_per_series")
            out.append(
                f"| {row['kind']} | {row['series']:,} | {row['tradetel_ms']:.1f} ({row['tradetel_collect_ms']:.1f}) "
                f"| {row['prometheus_client_ms']:.1f} | {row['ratio']:.2f} | {row['tradetel_us_per_series']:.1f} "
                f"| {'' if stock is None else f'{stock:.0f}'} | {row['tradetel_public_ms']:.1f} |"
            )
    if document["memory"]:
        out += [
            "",
            "| bytes per series | tradetel | public path | prometheus_client | OTel SDK, 1 reader |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in document["memory"]:
            out.append(
                f"| {row['kind']} | {row['tradetel_bytes']:,} | {row['tradetel_public_bytes']:,} "
                f"| {row['prometheus_client_bytes']:,} | {row['otel_sdk_1_reader_bytes']:,} |"
            )
    return "\n".join(out) + "\n"


def run_others(quick: bool) -> None:
    """Run the focused benchmarks beside this suite (fan-out, decorators, flood) as separate processes."""
    for script in sorted(Path(__file__).resolve().parent.glob("bench_*.py")):
        print(f"\n=== {script.name} ===", flush=True)
        subprocess.run([sys.executable, str(script), *(["--quick"] if quick else [])], check=False)


if __name__ == "__main__":
    sys.exit(main())
