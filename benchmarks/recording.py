"""Per-call recording subjects: tradetel, prometheus_client, the OpenTelemetry SDK, DogStatsd, a dict.

Every subject is a statement as a user would write it at a call site, run in
one shared namespace; the anchor is ``prometheus_client``'s
``Counter.labels(a, b, c).inc()``. tradetel runs with all three backends on
(Prometheus, OTLP and DogStatsD when the exporter exists): OTLP/HTTP goes to
a local sink that accepts and discards, DogStatsD to a local UDP socket
nobody reads, and the export interval is long enough never to fire during
the run (the push loop runs off the recording thread either way).
"""

from __future__ import annotations

import http.server
import importlib.util
import socket
import threading
from contextlib import ExitStack
from typing import Any

from timing import Subject

ANCHOR = "prometheus_client.counter.labels"
EXCHANGE, SYMBOL, SIDE = "binance", "BTC-USD", "buy"
_KW = f'exchange="{EXCHANGE}", symbol="{SYMBOL}", side="{SIDE}"'
_POS = f'"{EXCHANGE}", "{SYMBOL}", "{SIDE}"'
_DICT = f'{{"exchange": "{EXCHANGE}", "symbol": "{SYMBOL}", "side": "{SIDE}"}}'
_TAGS = f'["exchange:{EXCHANGE}", "symbol:{SYMBOL}", "side:{SIDE}"]'

TARGETS = {
    "scalar_attrs": 1.0,
    "scalar_bound": 0.4,
    "histogram_attrs": 2.0,
    "histogram_bound": 1.0,
    "decorated": 2.5,
    "overflow": 4.0,
    "public_attrs": 2.5,
}
# The paths measured besides the default one (fast path, generated methods), each in a Telemetry of its own.
VARIANTS = (
    ("plain", "tradetel, plain closures (fast path)", {"recording": "plain"}),
    ("public", "tradetel, public path (generated)", {"fast_path": False}),
    ("public_plain", "tradetel, public path (plain closures)", {"fast_path": False, "recording": "plain"}),
)
OVERFLOW_LIMIT = 8  # series of bench.overflow before every new attribute set lands in its overflow series


def has_dogstatsd_exporter() -> bool:
    return importlib.util.find_spec("tradetel.exporters.dogstatsd") is not None


def has_decorators() -> bool:
    return importlib.util.find_spec("tradetel.decorators") is not None


def _udp_sink(stack: ExitStack) -> int:
    """A bound UDP socket nobody reads: datagrams are accepted, then dropped by the kernel once it is full."""
    sink = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sink.bind(("127.0.0.1", 0))
    return int(sink.getsockname()[1])


class _OtlpSink(http.server.BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports with an empty (valid) protobuf response, so shutdown's flush is quick."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass


def _otlp_sink(stack: ExitStack) -> str:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtlpSink)
    thread = threading.Thread(target=server.serve_forever, name="bench-otlp-sink", daemon=True)
    thread.start()
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    return f"http://127.0.0.1:{server.server_address[1]}/v1/metrics"


def bench_catalog() -> list[Any]:
    """One instrument of each kind with the attributes of ``orders.slippage``, and one of each with none."""
    from tradetel import InstrumentSpec, Kind
    from tradetel.catalog import DEFAULT_CATALOG

    slippage = DEFAULT_CATALOG["orders.slippage"]
    attributes = slippage.attributes  # exchange: TopN(20), symbol: TopN(200), side: OneOf(buy, sell)
    specs = []
    for name, kind in (
        ("counter", Kind.COUNTER),
        ("up_down", Kind.UP_DOWN_COUNTER),
        ("gauge", Kind.GAUGE),
        ("histogram", Kind.HISTOGRAM),
    ):
        buckets = slippage.buckets if kind is Kind.HISTOGRAM else None
        specs.append(InstrumentSpec(f"bench.{name}", kind, "1", f"Benchmark {name}.", attributes, buckets=buckets))
        specs.append(InstrumentSpec(f"bench.{name}_bare", kind, "1", f"Benchmark {name}, no attributes.", (), buckets))
    specs.append(
        InstrumentSpec(
            "bench.overflow",
            Kind.COUNTER,
            "1",
            "Benchmark counter past its series limit.",
            attributes,
            cardinality_limit=OVERFLOW_LIMIT,
        )
    )
    return specs


def build(stack: ExitStack) -> tuple[list[Subject], dict[str, Any], dict[str, Any]]:
    """Create every recorder; return the subjects, their namespace and a description of the setup."""
    import prometheus_client
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    import tradetel

    ns: dict[str, Any] = {}
    subjects: list[Subject] = []

    def add(key: str, group: str, label: str, stmt: str, target: float | None = None, note: str = "") -> None:
        subjects.append(Subject(key, group, label, stmt, target, note))

    # --- prometheus_client: the anchor and its bound child ---------------------------------------
    registry = prometheus_client.CollectorRegistry()
    labels = ["exchange", "symbol", "side"]
    ns["prom_counter"] = prometheus_client.Counter("bench_fills", "Fills.", labels, registry=registry)
    ns["prom_counter_child"] = ns["prom_counter"].labels(EXCHANGE, SYMBOL, SIDE)
    from tradetel.catalog import DEFAULT_CATALOG

    buckets = DEFAULT_CATALOG["orders.slippage"].buckets
    ns["prom_histogram"] = prometheus_client.Histogram(
        "bench_slippage", "Slippage.", labels, buckets=buckets, registry=registry
    )
    ns["prom_histogram_child"] = ns["prom_histogram"].labels(EXCHANGE, SYMBOL, SIDE)
    group = "prometheus_client"
    add(ANCHOR, group, "Counter.labels(a,b,c).inc()  [anchor]", f"prom_counter.labels({_POS}).inc()")
    add("prometheus_client.counter.bound", group, "bound child .inc()", "prom_counter_child.inc()")
    add(
        "prometheus_client.histogram.labels",
        group,
        "Histogram.labels(a,b,c).observe(v)",
        f"prom_histogram.labels({_POS}).observe(1.5)",
    )
    add("prometheus_client.histogram.bound", group, "bound child .observe(v)", "prom_histogram_child.observe(1.5)")

    # --- plain Python and DogStatsd -------------------------------------------------------------
    ns["counts"] = {"fills": 0}
    add("python.dict_increment", "reference", "plain dict increment", 'counts["fills"] += 1')

    def plain() -> None:
        pass

    ns["plain"] = plain
    add("python.empty_call", "reference", "empty function call", "plain()")
    from datadog.dogstatsd.base import DogStatsd

    statsd = DogStatsd(host="127.0.0.1", port=_udp_sink(stack), disable_buffering=False, disable_telemetry=True)
    stack.callback(statsd.stop)
    ns["statsd"] = statsd
    add(
        "dogstatsd.increment",
        "reference",
        "DogStatsd buffered increment, 3 tags",
        f'statsd.increment("orders.filled", tags={_TAGS})',
    )
    add(
        "dogstatsd.distribution",
        "reference",
        "DogStatsd buffered distribution, 3 tags",
        f'statsd.distribution("orders.slippage", 1.5, tags={_TAGS})',
    )

    # --- the stock OpenTelemetry SDK, one and three readers -----------------------------------------
    for readers in (1, 3):
        provider = MeterProvider(metric_readers=[InMemoryMetricReader() for _ in range(readers)])
        stack.callback(provider.shutdown)
        meter = provider.get_meter("bench")
        ns[f"otel{readers}_counter"] = meter.create_counter("bench.fills")
        ns[f"otel{readers}_histogram"] = meter.create_histogram("bench.slippage")
        group = "OpenTelemetry SDK"
        add(
            f"otel.counter.attrs3.readers{readers}",
            group,
            f"Counter.add(1, {{3 attributes}}), {readers} reader{'s' * (readers > 1)}",
            f"otel{readers}_counter.add(1, {_DICT})",
        )
        add(
            f"otel.histogram.attrs3.readers{readers}",
            group,
            f"Histogram.record(v, {{3 attributes}}), {readers} reader{'s' * (readers > 1)}",
            f"otel{readers}_histogram.record(1.5, {_DICT})",
        )

    # --- tradetel, all three backends on ---------------------------------------------------------------
    exporters = ["prometheus", "otlp"] + (["dogstatsd"] if has_dogstatsd_exporter() else [])

    def telemetry(**path: Any) -> Any:
        made = tradetel.configure(
            catalog=bench_catalog(),
            exporters=exporters,
            env={},
            prometheus_port=0,
            otlp_endpoint=_otlp_sink(stack),
            otlp_protocol="http/protobuf",
            dogstatsd_url=f"udp://127.0.0.1:{_udp_sink(stack)}",
            export_interval=24 * 3600.0,
            export_timeout=0.5,
            shutdown_timeout=2.0,
            **path,
        )
        stack.callback(made.shutdown)
        return made

    tel = telemetry()
    ns["tel"] = tel
    setup = {"tradetel_exporters": exporters, "tradetel_recording_path": tel.recording_path}
    methods = {
        "counter": ("add", "1"),
        "up_down": ("add", "1"),
        "gauge": ("set", "1.5"),
        "histogram": ("record", "1.5"),
    }
    kind_labels = {"counter": "counter", "up_down": "up-down counter", "gauge": "gauge", "histogram": "histogram"}
    overflowing = tel.instrument("bench.overflow")
    for index in range(OVERFLOW_LIMIT):  # fill the limit: every new symbol now goes to the overflow series
        overflowing.add(1, exchange=EXCHANGE, symbol=f"FILL-{index}", side=SIDE)
    ns["tt_overflow"] = overflowing
    for name, (method, value) in methods.items():
        handle = tel.instrument(f"bench.{name}")
        ns[f"tt_{name}"] = handle
        ns[f"tt_{name}_bare"] = tel.instrument(f"bench.{name}_bare")
        ns[f"tt_{name}_bound"] = handle.bind(exchange=EXCHANGE, symbol=SYMBOL, side=SIDE)
        scalar = name != "histogram"
        group = f"tradetel {kind_labels[name]}"
        add(
            f"tradetel.{name}.attrs3",
            group,
            f".{method}(v, exchange=, symbol=, side=)",
            f"tt_{name}.{method}({value}, {_KW})",
            TARGETS["scalar_attrs" if scalar else "histogram_attrs"],
        )
        add(f"tradetel.{name}.attrs0", group, f".{method}(v), no attributes", f"tt_{name}_bare.{method}({value})")
        add(
            f"tradetel.{name}.bound",
            group,
            f"bound handle .{method}(v)",
            f"tt_{name}_bound.{method}({value})",
            TARGETS["scalar_bound" if scalar else "histogram_bound"],
        )
        if name == "counter":
            add(
                "tradetel.counter.overflow",
                group,
                ".add(v, exchange=, symbol=, side=) into the overflow series",
                f'tt_overflow.add(1, exchange="{EXCHANGE}", symbol="LATE-USD", side="{SIDE}")',
                TARGETS["overflow"],
                note="series limit reached: normalised, looked up and counted in cardinality.overflow on every call",
            )
    for variant, group, path in VARIANTS:
        other = telemetry(**path)
        setup[f"tradetel_{variant}_recording_path"] = other.recording_path
        for name, (method, value) in methods.items():
            if name in ("up_down", "gauge"):
                continue  # counters and histograms cover both write functions the variants differ in
            handle = other.instrument(f"bench.{name}")
            ns[f"tt_{variant}_{name}"] = handle
            ns[f"tt_{variant}_{name}_bound"] = handle.bind(exchange=EXCHANGE, symbol=SYMBOL, side=SIDE)
            scalar = name != "histogram"
            # The public path has a target of its own; plain closures have none: they are the measurement
            # that decided for generated methods (docs/performance.md), compared with the rows above.
            public = variant.startswith("public")
            add(
                f"tradetel.{variant}.{name}.attrs3",
                group,
                f"{kind_labels[name]} .{method}(v, exchange=, symbol=, side=)",
                f"tt_{variant}_{name}.{method}({value}, {_KW})",
                TARGETS["public_attrs"] if public else None,
            )
            add(
                f"tradetel.{variant}.{name}.bound",
                group,
                f"{kind_labels[name]} bound handle .{method}(v)",
                f"tt_{variant}_{name}_bound.{method}({value})",
                TARGETS["scalar_bound" if scalar else "histogram_bound"] if public else None,
            )
    add(
        "tradetel.catalog_call_site",
        "tradetel call site",
        "tel.orders.filled.add(1, exchange=, symbol=, side=)",
        f"tel.orders.filled.add(1, {_KW})",
        note="attribute path through the catalog groups included",
    )
    if has_decorators():
        from tradetel.decorators import timed

        @timed("bench.histogram", telemetry=tel, exchange=EXCHANGE, symbol=SYMBOL, side=SIDE)
        def decorated() -> None:
            pass

        ns["decorated"] = decorated
        add(
            "tradetel.decorated",
            "tradetel call site",
            "@timed(histogram, 3 static attributes) empty function",
            "decorated()",
            TARGETS["decorated"],
        )
    return subjects, ns, setup
