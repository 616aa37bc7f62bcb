"""Recording handles: generated methods, the per-handle memo, bound series and the SDK write path."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from decimal import Decimal
from enum import IntEnum
from fractions import Fraction

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

from tradetel import InstrumentSpec, InvalidAttributeError, InvalidValueError, Kind
from tradetel._instruments import BoundSeries
from tradetel._sdk import SeriesStore, view_instrument_match
from tradetel.catalog import Attribute
from tradetel.labels import Free, OneOf, TopN
from tradetel.testing import Capture, capture

VENUE = Attribute("venue", Free(max_length=16))
FROM = Attribute("from", OneOf(("open", "closed")))  # a Python keyword as a key
LIMITED = InstrumentSpec("test.limited", Kind.COUNTER, "1", "Small series limit.", (VENUE,), cardinality_limit=3)
KEYWORD = InstrumentSpec("test.keyword", Kind.COUNTER, "1", "A keyword key.", (FROM, VENUE))
TAGS = InstrumentSpec("test.tags", Kind.UP_DOWN_COUNTER, "1", "Free text.", (VENUE,))
SYMBOLS = InstrumentSpec("test.symbols", Kind.COUNTER, "1", "A small TopN.", (Attribute("symbol", TopN(n=2)),))


@pytest.fixture
def tcap() -> Iterator[Capture]:
    """A Telemetry whose catalog adds the small test instruments above."""
    with capture(catalog=[LIMITED, KEYWORD, TAGS, SYMBOLS]) as captured:
        yield captured


def test_generated_methods_take_the_catalog_keys_as_keywords(cap: Capture) -> None:
    """The recording method's signature lists the catalog keys, so a typo is visible in help() and IDEs."""
    parameters = inspect.signature(cap.telemetry.orders.filled.add).parameters
    assert list(parameters)[:5] == ["_value", "exchange", "symbol", "side", "order_type"]
    assert parameters["_value"].default == 1
    assert parameters["symbol"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "Add ``amount``" in (cap.telemetry.orders.filled.add.__doc__ or "")


def test_values_python_finds_equal_stay_distinct(tcap: Capture) -> None:
    """1, 1.0 and True hash alike but normalise differently; the memo must not merge them."""
    tel = tcap.telemetry
    for value in (1, 1.0, True, 1, "1", True, 1.0):
        tel.test.tags.add(1, venue=value)
    assert {a["venue"]: v for a, v in tcap.series("test.tags")} == {"1": 3, "1.0": 2, "true": 2}


def test_memo_stays_bounded_under_a_flood_of_distinct_values(tcap: Capture) -> None:
    """A flood of unique values keeps the memo and the series bounded; the hot series keeps counting."""
    tel = tcap.telemetry
    handle = tel.test.limited
    for i in range(5_000):
        handle.add(1, venue=f"junk-{i}")
        handle.add(1, venue="hot")
        assert len(handle._memo) <= handle._max_memo
    series = {a.get("venue", "overflow"): v for a, v in tcap.series("test.limited")}
    assert len(series) == 3 + 1  # the limit, plus the SDK's overflow series
    assert sum(series.values()) == 10_000
    assert series["hot"] == 5_000  # it took a series before the limit was reached


def test_long_and_unhashable_values_take_the_plain_path(tcap: Capture) -> None:
    """Values too long to memoise and unhashable values are normalised per call and recorded correctly."""
    tel = tcap.telemetry
    long_value = "x" * 1000
    for _ in range(3):
        tel.test.tags.add(2, venue=long_value)
        tel.test.tags.add(1, venue=[1, 2])
    assert not any(long_value in key for key in tel.test.tags._memo)
    assert {a["venue"]: v for a, v in tcap.series("test.tags")} == {"x" * 16: 6, "[1, 2]": 3}
    assert tcap.value("tradetel.attributes.folded", key="venue") == 3  # truncations, counted per call


def test_python_keyword_keys_record_through_the_plain_path(tcap: Capture) -> None:
    """A catalog key that is a Python keyword is accepted through ``**{...}`` and normalised as usual."""
    tel = tcap.telemetry
    tel.test.keyword.add(1, **{"from": "OPEN", "venue": "a"})
    tel.test.keyword.add(1, **{"from": "OPEN"}, venue="a")
    tel.test.keyword.bind(**{"from": "closed"}).add(5)
    assert sorted((sorted(a.items()), v) for a, v in tcap.series("test.keyword")) == [
        ([("from", "closed")], 5),
        ([("from", "open"), ("venue", "a")], 2),
    ]


def test_unknown_keys_are_counted_on_every_call(tcap: Capture, quiet_tradetel_logs: pytest.LogCaptureFixture) -> None:
    """A memoised series does not hide an unknown key: it is dropped and counted each time."""
    tel = tcap.telemetry
    for _ in range(4):
        tel.test.tags.add(1, venue="a")
        tel.test.tags.add(1, venue="a", order_id="x")
    assert tcap.series("test.tags") == [({"venue": "a"}, 8)]
    assert tcap.value("tradetel.attributes.dropped", key="order_id") == 4


def test_topn_is_consulted_on_every_call(tcap: Capture) -> None:
    """TopN keeps ranking memoised values: a value demoted later folds into ``other``."""
    tel = tcap.telemetry
    for symbol in ["A", "B"] + ["C"] * 20 + ["A"]:
        tel.test.symbols.add(1, symbol=symbol)
    series = {a["symbol"]: v for a, v in tcap.series("test.symbols")}
    reference = TopN(n=2).build()
    expected: dict[str, int] = {}
    for symbol in ["A", "B"] + ["C"] * 20 + ["A"]:
        key = reference(symbol)
        expected[key] = expected.get(key, 0) + 1
    assert series == expected
    assert "other" in series


def test_attributes_are_exported_in_catalog_order(cap: Capture) -> None:
    """Whatever the keyword order at the call site, a series carries its attributes in catalog order."""
    tel = cap.telemetry
    tel.orders.filled.add(1, side="buy", symbol="ETH-USD", exchange="kraken")
    tel.orders.filled.bind(side="sell", exchange="kraken", symbol="ETH-USD").add()
    tel.orders.filled.add(1, side="buy", order_id="1", exchange="kraken")  # the plain path, unknown key
    orders = [list(a) for a, _ in cap.series("orders.filled")]
    assert orders == [["exchange", "symbol", "side"], ["exchange", "symbol", "side"], ["exchange", "side"]]


def test_missing_keys_are_left_out(cap: Capture) -> None:
    """Keys not passed are absent from the series, not recorded as empty values."""
    cap.telemetry.orders.filled.add(1, symbol="BTC-USD")
    cap.telemetry.orders.filled.add(1)
    series = sorted(cap.series("orders.filled"), key=lambda item: len(item[0]))
    assert series == [({}, 1), ({"symbol": "BTC-USD"}, 1)]


@pytest.mark.parametrize(
    ("value", "recorded"),
    [(Decimal("2.5"), 2.5), (Fraction(1, 4), 0.25), (7, 7), (2.0, 2.0)],
)
def test_numbers_other_than_int_and_float_are_converted(cap: Capture, value: object, recorded: float) -> None:
    """Decimal and Fraction take the checked path and are recorded as floats, on bound and unbound handles."""
    tel = cap.telemetry
    tel.trades.realized_pnl.add(value, symbol="X")
    tel.trades.realized_pnl.bind(symbol="Y").add(value)
    assert cap.value("trades.realized_pnl", symbol="X") == recorded
    assert cap.value("trades.realized_pnl", symbol="Y") == recorded


def test_int_enum_values_are_numbers(cap: Capture) -> None:
    """An IntEnum member is a number, converted to float like other int subclasses."""

    class Level(IntEnum):
        HIGH = 3

    cap.telemetry.account.equity.set(Level.HIGH, account="main")
    assert cap.value("account.equity", account="main") == 3.0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, True, "1", None, 1e301, -1e301])
def test_bound_counters_drop_bad_values(cap: Capture, value: object) -> None:
    """Bound counters apply the same value checks as unbound calls: bad values are dropped and counted."""
    fills = cap.telemetry.orders.filled.bind(exchange="binance")
    fills.add(value)  # type: ignore[arg-type]
    fills.add(1)
    assert cap.value("orders.filled") == 1
    assert cap.dropped(instrument="orders.filled") == 1


def test_histograms_take_negative_values(cap: Capture) -> None:
    """Signed slippage and R-multiples: negative values land in the right buckets, bound and unbound."""
    tel = cap.telemetry
    tel.trades.r_multiple.record(-1.5, symbol="EURUSD", strategy="breakout")
    tel.trades.r_multiple.bind(symbol="EURUSD", strategy="breakout").record(-5)
    result = cap.histogram("trades.r_multiple")
    assert (result.count, result.sum, result.min, result.max) == (2, -6.5, -5, -1.5)
    assert result.bucket_counts[0] == 1  # -5 is on the first boundary: (-inf, -5]
    assert result.bucket_counts[list(result.bounds).index(-1.5)] == 1


def test_bound_wrong_method_is_dropped_and_counted(cap: Capture) -> None:
    """A bound gauge asked to add, or a bound counter asked to set, drops the call and counts it."""
    tel = cap.telemetry
    equity = tel.account.equity.bind(account="main")
    equity.add(1)
    equity.record(1)
    fills = tel.orders.filled.bind(exchange="x")
    fills.set(1)
    assert isinstance(equity, BoundSeries) and equity.attributes == {"account": "main"}
    assert cap.dropped(reason="wrong_method") == 3
    assert cap.value("account.equity") == 0 and cap.value("orders.filled") == 0


def test_unbound_wrong_method_is_dropped_and_counted(cap: Capture) -> None:
    """An unbound gauge asked to add or record, or a counter asked to set, drops the call and counts it."""
    tel = cap.telemetry
    tel.account.equity.add(1, account="main")
    tel.account.equity.record(1, account="main")
    tel.orders.filled.set(5, exchange="x")
    tel.orders.filled.add(2, exchange="x")
    assert cap.dropped(reason="wrong_method") == 3
    assert cap.value("account.equity") == 0 and cap.value("orders.filled") == 2


def test_strict_mode_raises_on_bound_and_unbound_calls(strict_cap: Capture) -> None:
    """Strict mode raises typed errors from the generated methods too."""
    tel = strict_cap.telemetry
    with pytest.raises(InvalidValueError):
        tel.orders.filled.bind(exchange="x").add(-1)
    with pytest.raises(InvalidValueError):
        tel.orders.slippage.record(float("nan"), exchange="x")
    with pytest.raises(InvalidAttributeError):
        tel.orders.filled.add(1, exchange="x", order_id="1")


def test_overflow_is_counted_and_logged_once(tcap: Capture, quiet_tradetel_logs: pytest.LogCaptureFixture) -> None:
    """Beyond the series limit, each measurement into the overflow series is counted; the log says it once."""
    tel = tcap.telemetry
    for venue in ["a", "b", "c", "d", "e", "d"]:
        tel.test.limited.add(1, venue=venue)
    bound = tel.test.limited.bind(venue="f")
    bound.add(1)
    bound.add(1)
    assert tcap.value("tradetel.cardinality.overflow", instrument="trading.test.limited") == 5
    assert sum("series limit" in r.getMessage() for r in quiet_tradetel_logs.records) == 1
    overflow = [v for a, v in tcap.series("test.limited") if "venue" not in a]
    assert overflow == [5]


def test_each_telemetry_has_its_own_memo() -> None:
    """Two Telemetry objects never share series through the memo."""
    with capture() as first, capture() as second:
        first.telemetry.orders.filled.add(1, exchange="x")
        second.telemetry.orders.filled.add(5, exchange="x")
        assert first.value("orders.filled") == 1 and second.value("orders.filled") == 5


def test_other_aggregations_use_the_sdk_aggregate() -> None:
    """An aggregation without an inlined update (exponential histogram) is written through aggregate()."""
    view = View(instrument_name="h", aggregation=ExponentialBucketHistogramAggregation())
    readers = [InMemoryMetricReader(), InMemoryMetricReader()]
    providers = [MeterProvider(metric_readers=[reader], views=[view]) for reader in readers]
    try:
        ours = providers[0].get_meter("m").create_histogram("h")
        theirs = providers[1].get_meter("m").create_histogram("h")
        store = SeriesStore(view_instrument_match(providers[0], readers[0], ours))
        aggregation = store.aggregation({"k": "v"})
        for value in (0.5, 3, 0, 1e6):
            store.write(aggregation, value)
            theirs.record(value, {"k": "v"})
        points = []
        for reader in readers:
            data = reader.get_metrics_data()
            assert data is not None
            point = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
            points.append((point.count, point.sum, point.scale, point.positive, point.zero_count, point.attributes))
        assert points[0] == points[1]
    finally:
        for provider in providers:
            provider.shutdown()


def test_logging_of_drops_does_not_repeat(cap: Capture, caplog: pytest.LogCaptureFixture) -> None:
    """A bad value in a tight loop logs once per instrument and reason."""
    caplog.set_level(logging.WARNING, logger="tradetel")
    for _ in range(100):
        cap.telemetry.orders.filled.add(-1, exchange="x")
    assert len([r for r in caplog.records if "negative" in r.getMessage()]) == 1
    assert cap.dropped(reason="negative") == 100


def test_keys_named_like_builtins_do_not_break_generated_code() -> None:
    """Catalog keys called ``type``, ``len``, ``int`` or ``float`` are plain keys to the generated methods."""
    keys = tuple(Attribute(key, Free()) for key in ("type", "len", "int", "float"))
    specs = [
        InstrumentSpec("odd.count", Kind.COUNTER, "1", "Builtin-named keys.", keys),
        InstrumentSpec("odd.sizes", Kind.HISTOGRAM, "1", "Builtin-named keys.", keys, buckets=(1.0, 2.0)),
    ]
    with capture(catalog=specs) as cap:
        tel = cap.telemetry
        for _ in range(2):
            tel.odd.count.add(2, type="limit", len="3", int="x", float="y")
            tel.odd.sizes.record(1.5, type="limit", len="3")
            tel.odd.sizes.bind(type="market").record(0.5)
        assert cap.value("odd.count", type="limit", len="3") == 4
        assert cap.histogram("odd.sizes", type="limit").bucket_counts == (0, 2, 0)
        assert cap.histogram("odd.sizes", type="market").count == 2


def test_tracebacks_through_generated_methods_are_readable() -> None:
    """In strict mode a failing policy's traceback shows the generated lines and its error, no memo-miss KeyError."""
    import traceback

    class Failing:
        folded = 0
        cacheable = True

        def __call__(self, value: object) -> str:
            raise RuntimeError("policy bug")

    class Policy:
        def build(self) -> Failing:
            return Failing()

    spec = InstrumentSpec("odd.failing", Kind.COUNTER, "1", "A failing policy.", (Attribute("key", Policy()),))
    with capture(catalog=[spec], strict=True) as cap, pytest.raises(InvalidAttributeError) as raised:
        cap.telemetry.odd.failing.add(1, key="v")
    text = "".join(traceback.format_exception(raised.value))
    assert "_resolve(_value, _key, None)" in text
    assert "RuntimeError: policy bug" in text
    assert "KeyError" not in text
