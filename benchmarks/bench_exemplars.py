"""Exemplars: the recording cost with each filter, and the OpenMetrics render with exemplars.

    .venv/bin/python benchmarks/bench_exemplars.py            # about 40 s
    .venv/bin/python benchmarks/bench_exemplars.py --quick    # fewer rounds, 1k series

Per call, as ratios to ``prometheus_client`` ``Counter.labels(a, b, c).inc()`` measured in the same
rounds (see ``timing.py``), a histogram ``.record(v, exchange=, symbol=, side=)`` and a bound
``.record(v)`` with:

- ``always_off``, and ``trace_based`` configured before any tracer provider exists (a bot without
  tracing): the recording methods are the generated functions themselves, so both rows must equal
  the histogram rows of ``run.py``;
- ``trace_based`` with a tracer provider, outside a span (one context look-up per call), and inside a
  sampled span (every call becomes an exemplar; the span's attach/detach is measured on its own row
  and included in this one);
- ``always_on`` (every call becomes an exemplar), with an ``order_id`` exemplar attribute set.

Then one collection of histogram series, each with exemplars in three buckets, rendered as
OpenMetrics, as a ratio to the text 0.0.4 render of the same collection (which never carries them),
beside the same ratio without exemplars.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import prometheus_client
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from timing import Subject, interleaved

import tradetel
from tradetel._exemplars import set_exemplar_attributes

OFF_TARGET = 2.0  # the histogram_attrs target of run.py: exemplars off must not move it
ON_TARGET = 4.5
BOUND_ON_TARGET = 2.5
RENDER_TARGET = 2.5
_KW = 'exchange="binance", symbol="BTC-USD", stage="ack"'


def _bench(env: dict[str, str]) -> tradetel.Telemetry:
    return tradetel.configure(exporters="none", env=env, runtime_metrics=False)


def namespace() -> tuple[dict[str, Any], list[tradetel.Telemetry]]:
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("orders", "Orders.", ["exchange", "symbol", "side"], registry=registry)
    off = _bench({"OTEL_METRICS_EXEMPLAR_FILTER": "always_off"})
    untraced = _bench({})  # trace_based, the default, before any tracer provider is set
    trace.set_tracer_provider(TracerProvider())
    traced = _bench({})
    on = _bench({"OTEL_METRICS_EXEMPLAR_FILTER": "always_on"})
    for tel in (off, untraced):
        assert tel._exemplars is None, "exemplars off must leave the recording methods alone"
    span = trace.get_tracer("bench").start_span("order")
    sampled = trace.set_span_in_context(span)
    set_exemplar_attributes({"order_id": "bot-1234567"})  # every exemplar below carries it
    ns: dict[str, Any] = {"counter": counter, "attach": context.attach, "detach": context.detach, "sampled": sampled}
    for name, tel in (("off", off), ("untraced", untraced), ("traced", traced), ("on", on)):
        handle = tel.orders.latency
        ns[name] = handle
        ns[name + "_bound"] = handle.bind(exchange="binance", stage="ack")
    return ns, [off, untraced, traced, on]


SUBJECTS = (
    Subject(
        "anchor", "prometheus_client", "Counter.labels(a,b,c).inc()", "counter.labels('binance','BTC','buy').inc()"
    ),
    Subject("off", "always_off", ".record(v, 3 attributes)", f"off.record(0.012, {_KW})", OFF_TARGET),
    Subject(
        "untraced", "trace_based, no tracing", ".record(v, 3 attributes)", f"untraced.record(0.012, {_KW})", OFF_TARGET
    ),
    Subject("traced", "trace_based, outside a span", ".record(v, 3 attributes)", f"traced.record(0.012, {_KW})"),
    Subject("span", "span", "context attach + detach alone", "detach(attach(sampled))"),
    Subject(
        "traced_in",
        "trace_based, sampled span",
        "attach + .record(v, 3 attributes) + detach",
        f"token = attach(sampled); traced.record(0.012, {_KW}); detach(token)",
    ),
    Subject("on", "always_on", ".record(v, 3 attributes)", f"on.record(0.012, {_KW})", ON_TARGET),
    Subject("off_bound", "always_off", "bound .record(v)", "off_bound.record(0.012)"),
    Subject("on_bound", "always_on", "bound .record(v)", "on_bound.record(0.012)", BOUND_ON_TARGET),
)


def render_ratios(series: int, rounds: int) -> None:
    """OpenMetrics with exemplars / text, and OpenMetrics without exemplars / text, for ``series`` histograms."""
    from tradetel.exporters.prometheus import render, render_openmetrics

    for label, env in (("without exemplars", {}), ("with exemplars", {"OTEL_METRICS_EXEMPLAR_FILTER": "always_on"})):
        with tradetel.configure(exporters="none", env=env, runtime_metrics=False, cardinality_limit=2 * series) as tel:
            record = tel.orders.slippage.record
            with tradetel.exemplar(order_id="bot-1234567"):
                for index in range(series):
                    for value in (-3.0, 0.5, 12.0):
                        record(value, exchange=f"v{index % 10}", symbol=f"S{index}", side="buy", reference="limit")
            collected = tel.collect()
            ratios = []
            for _ in range(rounds):
                gc.collect()
                text = min(timeit.repeat(lambda data=collected: render(data), number=1, repeat=3))
                openmetrics = min(timeit.repeat(lambda data=collected: render_openmetrics(data), number=1, repeat=3))
                ratios.append(openmetrics / text)
            ratio = statistics.median(ratios)
            verdict = f"<= {RENDER_TARGET:g} {'met' if ratio <= RENDER_TARGET else 'MISSED'}"
            print(f"  OpenMetrics {label:<18} / text, {series:,} histogram series: {ratio:5.2f}  {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds and 1,000 series")
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else 15
    ns, telemetries = namespace()
    try:
        results = interleaved(SUBJECTS, ns, "anchor", rounds=rounds, sample_seconds=0.02)
    finally:
        for tel in telemetries:
            tel.shutdown()
    print(f"{'subject':<66} {'ns/call':>9} {'ratio':>7}  {'IQR':>13}  target")
    for result in results.values():
        low, high = result.spread
        target = result.subject.target
        verdict = "" if target is None else f"<= {target:g} {'met' if result.ratio <= target else 'MISSED'}"
        label = f"{result.subject.group}: {result.subject.label}"
        print(f"{label:<66} {result.ns:9.0f} {result.ratio:7.2f}  {low:5.2f}-{high:5.2f}  {verdict}")
    off, untraced, on = (results[key].ratio for key in ("off", "untraced", "on"))
    print(f"\n  trace_based without tracing / always_off: {untraced / off:.2f} (the same function: 1 within noise)")
    print(f"  always_on / always_off: {on / off:.2f}")
    print("\nRender")
    render_ratios(1_000 if args.quick else 10_000, 3 if args.quick else 7)
    return 0


if __name__ == "__main__":
    sys.exit(main())
