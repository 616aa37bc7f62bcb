"""The order tracker, one behaviour at a time: transitions, clocks, results, bad input, memory bounds."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator

import pytest

from tradetel import InvalidValueError
from tradetel.errors import ConfigurationError
from tradetel.orders import OrderTracker
from tradetel.testing import Capture, capture

BTC = {"exchange": "binance", "symbol": "BTC/USDT", "side": "buy"}


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cap(clock: Clock) -> Iterator[Capture]:
    with capture() as cap:
        cap.telemetry._order_tracker = OrderTracker(cap.telemetry, clock=clock)
        yield cap


@pytest.fixture
def strict_cap(clock: Clock) -> Iterator[Capture]:
    with capture(strict=True) as cap:
        cap.telemetry._order_tracker = OrderTracker(cap.telemetry, clock=clock)
        yield cap


def test_one_tracker_per_telemetry_beside_the_orders_namespace() -> None:
    """tel.order_tracker is built once and does not shadow the tel.orders instrument namespace."""
    with capture() as cap:
        tel = cap.telemetry
        assert tel.order_tracker is tel.order_tracker
        assert tel.orders.filled is tel.instrument("orders.filled")
    with capture() as other:
        assert other.telemetry.order_tracker is not tel.order_tracker


def test_explicit_lifecycle_records_each_transition_once(cap: Capture, clock: Clock) -> None:
    """Decision, submit, ack, two fills and the end give every stage latency, VWAP slippage, fees and pending 0."""
    tracker = cap.telemetry.order_tracker
    tracker.open("c1", **BTC, amount=2, price=100, decision_price=99.5, intent="entry", submitted=False)
    clock.now += 0.25
    tracker.submitted("c1")
    assert cap.value("orders.pending") == 1
    clock.now += 0.5
    tracker.acked("c1", exchange_id="X1")
    clock.now += 1.0
    tracker.fill("X1", 1.0, 99.0, fee=0.1, trade_id="t1")
    tracker.fill("c1", 1.0, 99.0, fee=0.1, trade_id="t1")  # the same fill again, by the other id
    clock.now += 2.0
    tracker.fill("X1", 1.0, 101.0, fee=0.1, trade_id="t2")
    tracker.fill("X1", 0.5, 101.0, trade_id="t3")  # after the end: ignored, counted as a late fill
    keys = {**BTC, "order_type": "limit", "intent": "entry"}
    for name in ("submitted", "acknowledged", "partially_filled", "filled"):
        assert cap.value(f"orders.{name}", **keys) == 1, name
    assert cap.value("orders.pending") == 0
    latency = {(a["stage"], a["clock"]): (v.count, v.sum) for a, v in cap.series("orders.latency")}
    assert latency == {
        ("submit", "local"): (1, 0.25),
        ("ack", "local"): (1, 0.5),
        ("fill", "local"): (1, 1.5),
        ("final", "local"): (1, 3.5),
    }
    assert cap.histogram("orders.time_in_book", state="filled", clock="local").sum == 3.0
    assert cap.histogram("orders.slippage", reference="decision").sum == pytest.approx(1e4 * 0.5 / 99.5)
    assert cap.histogram("orders.slippage", reference="limit").sum == pytest.approx(0.0)
    assert cap.value("orders.fees", intent="entry") == pytest.approx(0.2)
    assert cap.histogram("orders.fill_ratio", state="filled").sum == 1.0
    assert cap.dropped("late_fill") == 1


def test_ccxt_updates_out_of_order_and_twice(cap: Capture, clock: Clock) -> None:
    """A stale cumulative update after a newer one, a repeat, and a late partial after the end change nothing."""
    tracker = cap.telemetry.order_tracker
    tracker.open("c2", **BTC, amount=3, price=50)
    base = {"id": "X2", "clientOrderId": "c2", "symbol": "BTC/USDT", "side": "buy", "amount": 3, "timestamp": 1_000}
    tracker.update({**base, "status": "open", "filled": 2.0, "average": 49.0})
    tracker.update({**base, "status": "open", "filled": 1.0, "average": 48.0})  # older, delivered later
    tracker.update({**base, "status": "open", "filled": 2.0, "average": 49.0})
    assert cap.value("orders.partially_filled") == 1
    tracker.update({**base, "status": "canceled", "filled": 2.0, "average": 49.0, "lastUpdateTimestamp": 4_000})
    tracker.update({**base, "status": "open", "filled": 2.5, "average": 49.0})  # late, after the end
    assert cap.value("orders.cancelled") == 1
    assert cap.value("orders.pending") == 0
    assert cap.histogram("orders.fill_ratio", state="cancelled").sum == pytest.approx(2 / 3)
    assert cap.histogram("orders.latency", stage="final", clock="exchange").sum == 3.0
    assert cap.histogram("orders.slippage", reference="limit").sum == pytest.approx(-1e4 * 1 / 50)
    assert cap.dropped("late_fill") == 1


def test_exchange_update_before_the_submission_is_one_order(cap: Capture, clock: Clock) -> None:
    """A websocket update that beats create_order's return is adopted, then completed by open(): submitted once."""
    tracker = cap.telemetry.order_tracker
    update = {"id": "X3", "clientOrderId": "c3", "symbol": "BTC/USDT", "side": "sell", "amount": 1, "status": "open"}
    clock.now = 10.0
    tracker.update(update, exchange="binance")
    clock.now = 10.5
    tracker.open("c3", "X3", exchange="binance", symbol="BTC/USDT", side="sell", amount=1, submitted_at=9.75)
    tracker.update({**update, "status": "closed", "filled": 1.0, "average": 10.0})
    assert cap.value("orders.submitted") == 1
    assert cap.value("orders.filled", side="sell") == 1
    assert cap.histogram("orders.latency", stage="ack").sum == 0.25
    assert cap.value("orders.pending") == 0


def test_cancel_request_latency_and_expiry(cap: Capture, clock: Clock) -> None:
    """cancel_requested starts the cancel stage; expired ends an order with its partial fill."""
    tracker = cap.telemetry.order_tracker
    tracker.open("a", **BTC, amount=1, price=10)
    tracker.open("b", **BTC, amount=4, price=10, time_in_force="IOC")
    clock.now += 1.0
    tracker.cancel_requested("a")
    clock.now += 0.125
    tracker.cancelled("a")
    tracker.expired("b", filled=1.0, average=10.0, fee=0.01)
    assert cap.histogram("orders.latency", stage="cancel").sum == 0.125
    assert cap.value("orders.expired") == 1
    assert cap.value("orders.partially_filled") == 1
    assert cap.value("orders.submitted", time_in_force="ioc") == 1
    assert cap.value("orders.fees") == pytest.approx(0.01)
    assert cap.value("orders.pending") == 0


def test_rejection_reason_is_normalised(cap: Capture) -> None:
    """rejected() folds free text to the rejection category; a rejected order is never acknowledged."""
    tracker = cap.telemetry.order_tracker
    tracker.open("r", **BTC, amount=1, order_type="market")
    tracker.rejected("r", "Account has insufficient balance for requested action.")
    assert cap.value("orders.rejected", reason="insufficient_funds", order_type="market") == 1
    assert cap.value("orders.acknowledged") == 0
    assert cap.histogram("orders.fill_ratio").count == 0
    assert cap.value("orders.pending") == 0


def test_replaced_order_keeps_its_fills(cap: Capture) -> None:
    """An amended order under a new exchange id stays one order; fills on both ids add up against the new amount."""
    tracker = cap.telemetry.order_tracker
    tracker.open("c", "old", **BTC, amount=1, price=100)
    tracker.fill("old", 0.5, 100, trade_id="t1")
    tracker.replaced("old", "new", amount=2, price=101)
    tracker.fill("new", 1.5, 101, trade_id="t2")
    assert cap.value("orders.filled") == 1
    assert cap.value("orders.submitted") == 1
    vwap = (0.5 * 100 + 1.5 * 101) / 2
    assert cap.histogram("orders.slippage", reference="limit").sum == pytest.approx((vwap - 101) / 101 * 1e4)


def test_fee_currencies(cap: Capture) -> None:
    """A base-currency fee is converted at the fill price; a third currency leaves the order's fee unknown, counted."""
    tracker = cap.telemetry.order_tracker
    tracker.open("f", **BTC, amount=2, price=100)
    tracker.trade({"id": "t1", "order": "F", "clientOrderId": "f", "amount": 1, "price": 100,
                   "fee": {"cost": 0.001, "currency": "BTC"}})  # fmt: skip
    tracker.fill("f", 1, 100, fee=0.05, trade_id="t2")
    assert cap.value("orders.fees") == pytest.approx(0.1 + 0.05)
    tracker.open("g", **BTC, amount=2, price=100)
    tracker.fill("g", 1, 100, fee=0.05, trade_id="u1")
    tracker.trade({"id": "u2", "clientOrderId": "g", "amount": 1, "price": 100, "fee": {"cost": 1, "currency": "BNB"}})
    tracker.trade({"id": "u2", "clientOrderId": "g", "amount": 1, "price": 100, "fee": {"cost": 1, "currency": "BNB"}})
    assert cap.dropped("fee_currency") == 1
    assert cap.value("orders.filled") == 2  # the fill itself counts
    assert cap.value("orders.fees") == pytest.approx(0.15)  # g's total fee is unknown: nothing recorded for it


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda t: t.fill("nobody", 1, 1), "unknown_order"),
        (lambda t: t.fill("o", -1, 100), "negative_fill"),
        (lambda t: t.fill("o", 5, 100), "overfill"),
        (lambda t: t.fill("o", 1, float("nan")), "invalid_price"),
        (lambda t: t.update({"id": "O", "clientOrderId": "o", "filled": float("nan")}), "non_finite"),
        (lambda t: t.update(["not", "an", "order"]), "wrong_type"),
        (lambda t: t.open(exchange="x", symbol="s", side="buy", amount=1), "missing_id"),
        (lambda t: t.open("p", exchange="x", symbol="s", side="buy", amount=0), "invalid_amount"),
        (lambda t: t.update({"id": "old", "status": "closed", "filled": 1}), "unknown_order"),
    ],
)
def test_bad_input_is_dropped_counted_and_raised_in_strict_mode(call: object, reason: str, clock: Clock) -> None:
    """Bad input never raises by default: it is dropped and counted by reason; strict mode raises it."""
    with capture() as cap:
        tracker = OrderTracker(cap.telemetry, clock=clock)
        tracker.open("o", **BTC, amount=2, price=100)
        call(tracker)  # type: ignore[operator]
        assert cap.dropped(reason) == 1
        assert cap.dropped() == 1
        assert cap.value("orders.partially_filled") + cap.value("orders.filled") == 0
    with capture(strict=True) as cap:
        tracker = OrderTracker(cap.telemetry, clock=clock)
        tracker.open("o", **BTC, amount=2, price=100)
        with pytest.raises(InvalidValueError, match=reason):
            call(tracker)  # type: ignore[operator]


def test_settings_are_checked() -> None:
    """Unusable bounds raise ConfigurationError naming the setting."""
    with capture() as cap:
        with pytest.raises(ConfigurationError, match=r"order_tracker\.max_open"):
            OrderTracker(cap.telemetry, max_open=0)
        with pytest.raises(ConfigurationError, match=r"order_tracker\.max_age"):
            OrderTracker(cap.telemetry, max_age=float("nan"))


def test_capacity_and_age_evictions_are_counted(cap: Capture, clock: Clock) -> None:
    """Past max_open the least recently updated order goes; past max_age idle ones go; each counted, pending exact."""
    tracker = OrderTracker(cap.telemetry, max_open=3, max_age=60.0, clock=clock)
    for n in range(5):
        tracker.open(f"o{n}", **BTC, amount=1)
        clock.now += 1
    assert tracker.open_orders == 3
    assert cap.value("tradetel.orders.evicted", reason="capacity") == 2
    tracker.acked("o2")  # o2 is now the most recently updated
    clock.now += 59.5
    tracker.open("late", **BTC, amount=1)  # o3 and o4 are idle beyond 60 s
    assert cap.value("tradetel.orders.evicted", reason="age") == 2
    assert tracker.open_orders == 2
    assert cap.value("orders.pending") == 2
    tracker.cancelled("o2")
    tracker.cancelled("late")
    tracker.cancelled("o0")  # evicted: its late end is ignored, not counted twice
    assert cap.value("orders.pending") == 0
    assert cap.value("orders.cancelled") == 2


def test_streamed_orders_keep_memory_bounded(clock: Clock) -> None:
    """30,000 orders streamed with at most 1,000 open: heap bounded, every order beyond the cap evicted and counted."""
    with capture() as cap:
        tracker = OrderTracker(cap.telemetry, max_open=1_000, max_ended=1_000, clock=clock)
        gc.collect()
        tracemalloc.start()
        try:
            peak_after_warmup = 0
            for n in range(30_000):
                clock.now += 0.001
                tracker.open(n, **BTC, amount=1, price=100)
                if n % 3 == 0:
                    tracker.fill(n, 1, 100, trade_id=n)  # a third end filled, the rest are evicted
                if n == 5_000:
                    peak_after_warmup = tracemalloc.get_traced_memory()[0]
            current, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        filled = len(range(0, 30_000, 3))
        assert cap.value("orders.filled") == filled
        assert cap.value("tradetel.orders.evicted", reason="capacity") == 30_000 - filled - tracker.open_orders
        assert tracker.open_orders == cap.value("orders.pending") == 1_000
        assert current < peak_after_warmup * 1.25 + 256 * 1024


def test_demo_resting_orders_go_through_the_tracker() -> None:
    """The demo's limit orders fill in parts, get cancelled and expire; pending equals what is still on its book."""
    from tradetel._demo import DemoBot

    with capture() as cap:
        bot = DemoBot(cap.telemetry, seed=3)
        for step in range(3000):  # 150 simulated seconds, in no time
            bot.tick(step * 0.05)
        limit = {"exchange": "binance", "order_type": "limit"}
        ended = sum(cap.value(f"orders.{state}", **limit) for state in ("filled", "cancelled", "expired"))
        assert all(cap.value(f"orders.{state}", **limit) > 0 for state in ("filled", "cancelled", "expired"))
        assert cap.value("orders.partially_filled", **limit) > 0
        assert cap.value("orders.submitted", **limit) == ended + len(bot.book.open)
        assert cap.telemetry.order_tracker.open_orders == len(bot.book.open)
        assert cap.histogram("orders.latency", stage="cancel", clock="local").count > 0
        assert cap.dropped() == 0
