"""Views built from the catalog: allow-lists, buckets, series limits, overrides, and what overflow looks like."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tradetel._docs import cardinality_markdown
from tradetel.catalog import DEFAULT_CATALOG, Attribute, InstrumentSpec, Kind
from tradetel.errors import ConfigurationError
from tradetel.exporters.prometheus import render
from tradetel.labels import Free, OneOf, TopN
from tradetel.testing import Capture, capture
from tradetel.views import (
    OVERFLOW_ATTRIBUTE,
    apply_overrides,
    build_views,
    series_bound,
    series_limit,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
FLOOD = InstrumentSpec(
    "test.flood",
    Kind.COUNTER,
    "{event}",
    "Events with an open attribute, for overflow tests.",
    (Attribute("tag", Free()), Attribute("side", OneOf(("buy", "sell")))),
    cardinality_limit=10,
)


def _overflowed(cap: Capture, name: str) -> list[tuple[dict[str, Any], Any]]:
    return [(a, v) for a, v in cap.series(name) if a.get(OVERFLOW_ATTRIBUTE) is True]


def test_one_view_per_instrument_with_keys_buckets_and_limit() -> None:
    """Every catalog instrument gets a view with its attribute keys, its buckets (histograms) and its series limit."""
    catalog = DEFAULT_CATALOG.replace("orders.filled", cardinality_limit=50)
    views = {view._instrument_name: view for view in build_views(catalog, default_limit=700)}
    assert len(views) == len(catalog)
    filled = views["trading.orders.filled"]
    assert filled._attribute_keys == {"exchange", "symbol", "side", "order_type", "intent"}
    assert filled._aggregation_cardinality_limit == 50
    latency = views["trading.orders.latency"]
    assert latency._aggregation_cardinality_limit == 700
    assert latency._aggregation._boundaries == list(catalog["orders.latency"].buckets or ())


@pytest.mark.parametrize("limit", [0, -1, True, "10"])
def test_bad_default_limit_is_refused(limit: object) -> None:
    """A default series limit that is not an integer >= 1 fails with a ConfigurationError naming the setting."""
    with pytest.raises(ConfigurationError, match="cardinality_limit"):
        build_views(DEFAULT_CATALOG, default_limit=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("extra", [0, 1, 5, 50])
def test_limit_keeps_l_series_plus_one_overflow_series(extra: int) -> None:
    """With limit L, L attribute sets get their own series and the rest share one overflow series: L + 1 at most."""
    limit = FLOOD.cardinality_limit or 0
    with capture([FLOOD]) as cap:
        handle = cap.telemetry["test.flood"]
        for i in range(limit + extra):
            handle.add(1, tag=f"t{i}", side="buy")
        series = cap.series("test.flood")
        assert len(series) == limit + (1 if extra else 0)
        assert sum(v for _, v in series) == limit + extra
        overflow = _overflowed(cap, "test.flood")
        assert [v for _, v in overflow] == ([extra] if extra else [])
        assert cap.value("tradetel.cardinality.overflow", instrument="trading.test.flood") == extra


def test_series_created_before_the_limit_keep_counting() -> None:
    """After overflow, measurements with an attribute set that already has a series still go to that series."""
    with capture([FLOOD]) as cap:
        handle = cap.telemetry["test.flood"]
        for i in range(30):
            handle.add(1, tag=f"t{i}", side="buy")
        handle.add(5, tag="t0", side="buy")
        assert cap.value("test.flood", tag="t0") == 6


def test_view_limits_direct_otel_recording_too() -> None:
    """Recording on the underlying OTel instrument is bounded by the same view: L + 1 series, extra keys dropped."""
    with capture([FLOOD]) as cap:
        otel = cap.telemetry["test.flood"].otel_instrument
        for i in range(25):
            otel.add(1, {"tag": f"t{i}", "side": "buy", "order_id": f"id-{i}"})
        series = cap.series("test.flood")
        assert len(series) == 11
        assert all("order_id" not in attributes for attributes, _ in series)
        assert sum(v for _, v in series) == 25


def test_overflow_is_logged_once_per_instrument(caplog: pytest.LogCaptureFixture) -> None:
    """Reaching the limit logs one warning per instrument, however many measurements overflow."""
    caplog.set_level(logging.INFO, logger="tradetel")
    with capture([FLOOD]) as cap:
        handle = cap.telemetry["test.flood"]
        for i in range(200):
            handle.add(1, tag=f"t{i}", side="buy")
        cap.telemetry.collect()
    warnings = [r for r in caplog.records if "series limit" in r.getMessage()]
    assert len(warnings) == 1
    assert "trading.test.flood" in warnings[0].getMessage()
    assert warnings[0].levelno == logging.WARNING


def test_folds_are_counted_per_instrument_and_key_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Folded values appear in tradetel.attributes.folded{instrument,key} and are logged once per instrument and key."""
    caplog.set_level(logging.INFO, logger="tradetel")
    with capture([FLOOD]) as cap:
        handle = cap.telemetry["test.flood"]
        for _ in range(3):
            handle.add(1, tag="x" * 100, side="hold")
        cap.telemetry.collect()
        handle.add(1, tag="ok", side="short")
        assert cap.value("tradetel.attributes.folded", instrument="trading.test.flood", key="side") == 4
        assert cap.value("tradetel.attributes.folded", instrument="trading.test.flood", key="tag") == 3
        assert cap.value("test.flood", side="other") == 4
    logged = [r.getMessage() for r in caplog.records if "folded values" in r.getMessage()]
    assert len(logged) == 2
    assert all("trading.test.flood" in message for message in logged)


def test_unknown_keys_are_dropped_and_counted_or_raised() -> None:
    """An attribute key outside the allow-list is dropped and counted; the measurement is kept. Strict mode raises."""
    from tradetel.errors import InvalidAttributeError

    with capture([FLOOD]) as cap:
        cap.telemetry["test.flood"].add(1, tag="a", order_id="123")
        assert cap.value("test.flood", tag="a") == 1
        assert cap.series("test.flood")[0][0] == {"tag": "a"}
        assert cap.value("tradetel.attributes.dropped", instrument="trading.test.flood", key="order_id") == 1
    with capture([FLOOD], strict=True) as cap, pytest.raises(InvalidAttributeError):
        cap.telemetry["test.flood"].add(1, tag="a", order_id="123")


def test_prometheus_marks_only_the_overflow_series() -> None:
    """tradetel's exposition labels only the overflow series (otel_metric_overflow="true"), no other series."""
    with capture([FLOOD]) as cap:
        handle = cap.telemetry["test.flood"]
        for i in range(40):
            handle.add(1, tag=f"t{i}", side="buy")
        text = render(cap.telemetry.collect()).decode()
    (family,) = (f for f in text_string_to_metric_families(text) if f.name == "trading_test_flood")
    samples = [s for s in family.samples if s.name == "trading_test_flood_total"]
    assert len(samples) == 11
    marked = [s for s in samples if "otel_metric_overflow" in s.labels]
    assert len(marked) == 1
    assert marked[0].labels == {"otel_metric_overflow": "true"}
    assert marked[0].value == 30
    assert 'otel_metric_overflow=""' not in text


def test_series_limit_and_bound() -> None:
    """series_limit falls back to the default; series_bound multiplies the policies' bounds (absent is a value too)."""
    spec = InstrumentSpec(
        "x.y",
        Kind.COUNTER,
        "1",
        "Bounded test instrument.",
        (Attribute("side", OneOf(("buy", "sell"))), Attribute("symbol", TopN(n=4))),
    )
    assert series_limit(spec, 1000) == 1000
    assert series_limit(DEFAULT_CATALOG.replace("orders.filled", cardinality_limit=5)["orders.filled"], 1000) == 5
    assert series_bound(spec) == (3 + 1) * (5 + 1)
    assert series_bound(DEFAULT_CATALOG["security.rate_limited"]) is None
    assert series_bound(DEFAULT_CATALOG["risk.kill_switch.state"]) == 1


def test_overrides_change_limit_buckets_policies_and_keys() -> None:
    """apply_overrides sets a limit, histogram buckets, attribute policies (tables or objects) and a key subset."""
    catalog = apply_overrides(
        DEFAULT_CATALOG,
        {
            "orders.filled": {
                "cardinality_limit": 64,
                "attributes": {"symbol": {"policy": "top_n", "n": 5}, "exchange": TopN(n=2)},
                "keys": ["exchange", "symbol", "side"],
            },
            "orders.latency": {"buckets": [0.1, 1, 10]},
        },
    )
    filled = catalog["orders.filled"]
    assert filled.cardinality_limit == 64
    assert filled.attribute_keys == ("exchange", "symbol", "side")
    policies = {a.key: a.policy for a in filled.attributes}
    assert policies["symbol"] == TopN(n=5)
    assert policies["exchange"] == TopN(n=2)
    assert catalog["orders.latency"].buckets == (0.1, 1.0, 10.0)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"orders.nope": {}}, "instruments.orders.nope"),
        ({"orders.filled": 5}, "instruments.orders.filled"),
        ({"orders.filled": {"cardinality_limit": 0}}, "instruments.orders.filled.cardinality_limit"),
        ({"orders.filled": {"cardinality_limit": "10"}}, "instruments.orders.filled.cardinality_limit"),
        ({"orders.filled": {"buckets": [1, 2]}}, "instruments.orders.filled.buckets"),
        ({"orders.latency": {"buckets": [2, 1]}}, "instruments.orders.latency.buckets"),
        ({"orders.latency": {"buckets": []}}, "instruments.orders.latency.buckets"),
        ({"orders.latency": {"buckets": [1, float("inf")]}}, "instruments.orders.latency.buckets"),
        ({"orders.latency": {"buckets": "1,2"}}, "instruments.orders.latency.buckets"),
        ({"orders.filled": {"attributes": {"order_id": "free"}}}, "instruments.orders.filled.attributes"),
        ({"orders.filled": {"attributes": ["symbol"]}}, "instruments.orders.filled.attributes"),
        ({"orders.filled": {"attributes": {"symbol": "top_k"}}}, "instruments.orders.filled.attributes.symbol"),
        ({"orders.filled": {"keys": ["order_id"]}}, "instruments.orders.filled.keys"),
        ({"orders.filled": {"keys": "symbol"}}, "instruments.orders.filled.keys"),
        (
            {"orders.filled": {"keys": ["symbol"], "attributes": {"side": "free"}}},
            "instruments.orders.filled.attributes",
        ),
        ({"orders.filled": {"limit": 5}}, "instruments.orders.filled.limit"),
    ],
)
def test_bad_overrides_name_the_setting(overrides: dict[str, Any], setting: str) -> None:
    """Every malformed override raises a ConfigurationError that names instruments.<name>.<field>."""
    with pytest.raises(ConfigurationError) as info:
        apply_overrides(DEFAULT_CATALOG, overrides)
    assert info.value.setting == setting


def test_removed_key_is_dropped_and_counted() -> None:
    """A key removed by an override is dropped from measurements and counted like any unknown key."""
    with capture(instruments={"orders.filled": {"keys": ["exchange", "side"]}}) as cap:
        cap.telemetry.orders.filled.add(1, exchange="binance", side="buy", symbol="BTC-USD")
        assert cap.series("orders.filled") == [({"exchange": "binance", "side": "buy"}, 1)]
        assert cap.value("tradetel.attributes.dropped", instrument="trading.orders.filled", key="symbol") == 1


def test_cardinality_doc_tables_are_current() -> None:
    """docs/cardinality.md carries the policy and limit tables generated from the default catalog."""
    text = (DOCS / "cardinality.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- cardinality:begin[^\n]*-->\n(.*?)\n<!-- cardinality:end -->", text, re.S)
    assert match is not None
    assert match.group(1) == cardinality_markdown(DEFAULT_CATALOG, 1000)
