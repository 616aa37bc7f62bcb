"""The order lifecycle tracker behind :mod:`tradetel.orders`.

An order is a small state machine fed by updates that arrive late, twice or
out of order: explicit events (``acked``, ``fill``, ``cancelled``...) and
ccxt unified order and trade structures. The tracker keeps one record per
open order, keyed by client id and exchange id, and derives every metric from
state transitions, so each is recorded once per order whatever the order of
the updates:

- fills come from two sources kept apart: individual fills (deduplicated by
  trade id) and cumulative totals (``filled``/``average``/``cost``, the
  largest seen wins). The order's filled quantity is the larger of the two, so
  a total that already counts a fill and the fill itself never add up;
- ``orders.pending`` is +1 when an order is submitted (or first seen at the
  venue) and -1 exactly once when it ends or is evicted;
- a stage latency is recorded when both of its endpoints are known, on the
  venue's clock when both carry a venue timestamp, else on the local
  monotonic clock (the ``clock`` attribute says which);
- per-order results (fill ratio, slippage against the decision and the limit
  price, fees, time in book) are recorded once, at the final state.

Memory is bounded: at most ``max_open`` open orders (the least recently
updated one is evicted first) and ``max_age`` seconds without an update;
evictions are counted in ``tradetel.orders.evicted{reason}``. Ended orders are
remembered (``max_ended``, oldest forgotten first) so that late updates are
recognised and ignored. Bad input (unknown order, negative or non-finite
numbers, a fill beyond the amount) is dropped, counted in
``tradetel.measurements.dropped{instrument="tradetel.order_tracker"}`` and
logged once; strict mode raises.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._exemplars import exemplar_attributes, reset_exemplar_attributes, set_exemplar_attributes

if TYPE_CHECKING:
    from ._instruments import Instrument
    from .telemetry import Telemetry

__all__ = ["FINAL_STATES", "SUBJECT", "OrderTracker"]

SUBJECT = "tradetel.order_tracker"
"""The ``instrument`` attribute of the tracker's dropped updates in ``tradetel.measurements.dropped``."""

FINAL_STATES = ("filled", "cancelled", "expired", "rejected")

_TOLERANCE = 1e-9  # relative: 0.1 + 0.2 fills of a 0.3 order are a complete fill, not an overfill
_MAX_SERIES = 4096  # cached bound series; cleared when full (hot series come back at once)

_ENDS = frozenset(FINAL_STATES)

_CCXT_STATUS = {
    "open": "open",
    "new": "open",
    "closed": "filled",
    "filled": "filled",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "expired": "expired",
    "rejected": "rejected",
}

# Instruments the tracker writes (relative names) and the record method of each.
_INSTRUMENTS = {
    "orders.submitted": "add",
    "orders.acknowledged": "add",
    "orders.partially_filled": "add",
    "orders.filled": "add",
    "orders.cancelled": "add",
    "orders.expired": "add",
    "orders.rejected": "add",
    "orders.pending": "add",
    "orders.latency": "record",
    "orders.slippage": "record",
    "orders.notional": "record",
    "orders.fill_ratio": "record",
    "orders.fees": "add",
    "orders.time_in_book": "record",
    "orders.evicted": "add",
}


class _Order:
    """One tracked order. Times ending in ``_local`` are monotonic seconds; ``_venue`` are venue epoch seconds."""

    __slots__ = (
        "ack_local",
        "acked",
        "aliases",
        "amount",
        "attributes",
        "cancel_local",
        "client_id",
        "cost_known",
        "created_venue",
        "currencies",
        "decided_local",
        "decision_price",
        "exchange_id",
        "fee_lost",
        "filled",
        "final",
        "first_fill_local",
        "first_fill_venue",
        "pending",
        "price",
        "recorded",
        "seen_local",
        "signature",
        "submit_local",
        "time_in_force",
        "total_cost",
        "total_fee",
        "total_filled",
        "trade_cost",
        "trade_fee",
        "trade_filled",
        "trade_ids",
    )

    def __init__(self, attributes: tuple[tuple[str, str], ...], amount: float, now: float) -> None:
        self.attributes = attributes
        self.amount = amount
        self.client_id: str | None = None
        self.exchange_id: str | None = None
        self.aliases: list[str] | None = None  # earlier exchange ids (replaced orders)
        self.price: float | None = None
        self.decision_price: float | None = None
        self.time_in_force: str | None = None
        self.final: str | None = None
        self.acked = False
        self.pending = False
        self.recorded: set[str] = set()  # stages and once-only results already recorded
        self.decided_local: float | None = None
        self.submit_local: float | None = None
        self.ack_local: float | None = None
        self.first_fill_local: float | None = None
        self.cancel_local: float | None = None
        self.created_venue: float | None = None
        self.currencies: tuple[str | None, str | None] | None = None  # base and quote, from the symbol
        self.first_fill_venue: float | None = None
        self.seen_local = now
        self.signature: tuple[Any, ...] | None = None  # the last ccxt update applied, to skip repeats cheaply
        self.filled = 0.0  # the larger of the two sources below, as last processed
        self.trade_filled = 0.0
        self.trade_cost = 0.0
        self.trade_fee: float | None = None
        self.trade_ids: set[str] | None = None
        self.cost_known = True  # every counted individual fill had a price
        self.fee_lost = False  # an individual fill's fee could not be converted to quote
        self.total_filled = 0.0
        self.total_cost: float | None = 0.0
        self.total_fee: float | None = None

    def attribute(self, key: str) -> str | None:
        for name, value in self.attributes:
            if name == key:
                return value
        return None


class OrderTracker:
    """Follow orders from decision to final state and derive the order metrics from their transitions.

    One per :class:`~tradetel.Telemetry` (``tel.order_tracker``), or built on its own.
    Every method is safe from threads and asyncio tasks and never raises on bad input
    (strict mode does). Ids: an order is known by its client id, its exchange id, or
    both; every event takes either.

    Args:
        telemetry: where to record.
        max_open: open orders kept at most; opening one more evicts the least recently updated.
        max_age: seconds an open order may go without any update before it is evicted.
        max_ended: ended orders remembered so that late updates about them are ignored.
        clock: monotonic time in seconds (tests inject their own).

    Example::

        tracker = tel.order_tracker
        tracker.open("c-1", exchange="binance", symbol="BTC/USDT", side="buy", amount=2, price=100)
        tracker.acked("c-1", exchange_id="881")
        tracker.fill("881", 1.0, 100.05, trade_id="t1")
        tracker.cancelled("881")
    """

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        max_open: int = 10_000,
        max_age: float = 7 * 86400.0,
        max_ended: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from .errors import ConfigurationError

        if not isinstance(max_open, int) or isinstance(max_open, bool) or max_open < 1:
            raise ConfigurationError("order_tracker.max_open", max_open, "an int >= 1")
        if not isinstance(max_age, int | float) or isinstance(max_age, bool) or not max_age > 0:
            raise ConfigurationError("order_tracker.max_age", max_age, "a number of seconds > 0")
        ended = max_open if max_ended is None else max_ended
        if not isinstance(ended, int) or isinstance(ended, bool) or ended < 0:
            raise ConfigurationError("order_tracker.max_ended", max_ended, "an int >= 0")
        self._telemetry = telemetry
        self._health = telemetry.health
        self._max_open = max_open
        self._max_age = float(max_age)
        self._sweep_every = min(1.0, self._max_age / 100)  # age evictions run at most this late
        self._next_sweep = -math.inf
        self._max_ended = ended
        self._clock = clock
        self._lock = threading.Lock()
        self._by_client: dict[str, _Order] = {}
        self._by_exchange: dict[str, _Order] = {}
        self._open: OrderedDict[int, _Order] = OrderedDict()  # least recently updated first
        self._ended: OrderedDict[int, _Order] = OrderedDict()  # oldest end first
        self._handles: dict[str, tuple[Instrument, frozenset[str], str]] = {}
        for name, method in _INSTRUMENTS.items():
            try:
                handle = telemetry.instrument(name)
            except KeyError:
                continue  # a custom catalog without it: that metric is not recorded
            self._handles[name] = (handle, frozenset(handle.spec.attribute_keys), method)
        self._series: dict[tuple[Any, ...], Callable[[float], None]] = {}
        self._exemplars = telemetry._exemplars is not None  # order ids go to exemplars only when they are on

    # --- reading -----------------------------------------------------------------------------------

    @property
    def open_orders(self) -> int:
        """Orders open now (submitted or seen at the venue, not ended, not evicted)."""
        return len(self._open)

    def __repr__(self) -> str:
        return f"<OrderTracker open={len(self._open)} max_open={self._max_open} max_age={self._max_age:g}s>"

    # --- opening -----------------------------------------------------------------------------------

    def open(
        self,
        client_id: object = None,
        exchange_id: object = None,
        *,
        exchange: str,
        symbol: str,
        side: str,
        amount: float,
        order_type: str = "limit",
        price: float | None = None,
        decision_price: float | None = None,
        strategy: str | None = None,
        intent: str | None = None,
        time_in_force: str | None = None,
        submitted: bool = True,
        submitted_at: float | None = None,
        decided_at: float | None = None,
    ) -> None:
        """Start tracking an order, at decision (``submitted=False``) or at submission.

        Args:
            client_id, exchange_id: the order's ids; at least one. Opening an id the tracker
                already knows (an update arrived first) completes that order instead.
            exchange, symbol, side, order_type, intent, strategy, time_in_force: the order's
                attributes (``intent``: entry, exit or reduce).
            amount: the order quantity (> 0).
            price: the limit price, if any.
            decision_price: the price when the order was decided (arrival price), for slippage.
            submitted: ``False`` to open at decision time; call :meth:`submitted` when it is sent.
            submitted_at, decided_at: monotonic times (``time.monotonic()``) when known to be earlier
                than this call.
        """
        now = self._clock()
        ids = (_id(client_id), _id(exchange_id))
        with self._lock:
            if ids == (None, None):
                self._drop("missing_id", "open() without client_id or exchange_id")
                return
            size = _finite(amount)
            if size is None or size <= 0:
                self._drop("invalid_amount", amount)
                return
            limit, reference = _finite(price), _finite(decision_price)
            if (price is not None and (limit is None or limit <= 0)) or (
                decision_price is not None and (reference is None or reference <= 0)
            ):
                self._drop("invalid_price", price if limit is None else decision_price)
                return
            known = self._find(*ids)
            if known is not None:
                self._complete(known, ids, size, limit, reference, intent, strategy, submitted, submitted_at, now)
                return
            attributes = _attributes(exchange, symbol, side, order_type, intent, strategy)
            order = _Order(attributes, size, now)
            order.price, order.decision_price = limit, reference
            order.time_in_force = time_in_force
            order.decided_local = decided_at if decided_at is not None else now
            self._index(order, *ids)
            self._admit(order, now)
            if submitted:
                self._submit(order, submitted_at if submitted_at is not None else now)

    def submitted(self, order_id: object, *, exchange_id: object = None) -> None:
        """An order opened at decision time was sent to the venue now."""
        now = self._clock()
        with self._lock:
            order = self._event(order_id, exchange_id, now)
            if order is not None and order.submit_local is None and order.final is None:
                self._submit(order, now)

    # --- explicit events ---------------------------------------------------------------------------

    def acked(self, order_id: object, *, exchange_id: object = None, timestamp: float | None = None) -> None:
        """The venue acknowledged the order (``timestamp``: the venue's epoch seconds, if it says)."""
        now = self._clock()
        with self._lock:
            order = self._event(order_id, exchange_id, now)
            if order is None or order.final is not None:
                return
            venue = _finite(timestamp)
            if venue is not None and order.created_venue is None:
                order.created_venue = venue
            self._ack(order, now)

    def fill(
        self,
        order_id: object,
        amount: float,
        price: float,
        *,
        fee: float | None = None,
        fee_currency: str | None = None,
        trade_id: object = None,
        timestamp: float | None = None,
        exchange_id: object = None,
    ) -> None:
        """One fill of ``amount`` at ``price``. Pass ``trade_id`` so that a fill delivered twice counts once.

        ``fee`` is in quote currency unless ``fee_currency`` names the base currency (converted at ``price``).
        """
        now = self._clock()
        with self._lock:
            order = self._event(order_id, exchange_id, now)
            if order is not None:
                self._trade(order, amount, price, fee, fee_currency, _id(trade_id), _finite(timestamp), now)

    def cancel_requested(self, order_id: object, *, exchange_id: object = None) -> None:
        """A cancel was sent now; ``stage="cancel"`` latency runs from here to the cancel confirmation."""
        now = self._clock()
        with self._lock:
            order = self._event(order_id, exchange_id, now)
            if order is not None and order.final is None and order.cancel_local is None:
                order.cancel_local = now

    def cancelled(
        self,
        order_id: object,
        *,
        filled: float | None = None,
        average: float | None = None,
        fee: float | None = None,
        timestamp: float | None = None,
        exchange_id: object = None,
    ) -> None:
        """The order was cancelled.

        ``filled``, ``average`` and ``fee`` (quote currency): the order's cumulative fill, its average
        price and its total fee, when the venue reports them; without them, the fills seen so far count.
        """
        self._end(order_id, exchange_id, "cancelled", filled, average, fee, timestamp)

    def expired(
        self,
        order_id: object,
        *,
        filled: float | None = None,
        average: float | None = None,
        fee: float | None = None,
        timestamp: float | None = None,
        exchange_id: object = None,
    ) -> None:
        """The order's time in force ran out (IOC/FOK/GTD remainder, a day order at the close).

        Arguments as :meth:`cancelled`.
        """
        self._end(order_id, exchange_id, "expired", filled, average, fee, timestamp)

    def rejected(
        self, order_id: object, reason: str = "rejected", *, timestamp: float | None = None, exchange_id: object = None
    ) -> None:
        """The venue (or a pre-trade check) refused the order; ``reason`` is folded to a canonical category."""
        self._end(order_id, exchange_id, "rejected", None, None, None, timestamp, reason=reason)

    def replaced(
        self, order_id: object, new_id: object, *, amount: float | None = None, price: float | None = None
    ) -> None:
        """The order was amended under a new exchange id (cancel/replace); it stays one order, fills carried over."""
        now = self._clock()
        with self._lock:
            order = self._event(order_id, None, now)
            new = _id(new_id)
            if order is None or new is None:
                return
            size, limit = _finite(amount), _finite(price)
            if (amount is not None and (size is None or size <= 0)) or (
                price is not None and (limit is None or limit <= 0)
            ):
                self._drop("invalid_amount" if price is None else "invalid_price", amount if price is None else price)
                return
            if self._by_exchange.get(new, order) is not order:
                self._drop("id_conflict", new)
                return
            self._by_exchange[new] = order
            if order.exchange_id is not None and order.exchange_id != new:
                order.aliases = [*(order.aliases or ()), order.exchange_id]
            order.exchange_id = new
            if size is not None:
                order.amount = size
            if limit is not None:
                order.price = limit
            self._check_filled(order, None, now)

    # --- ccxt structures ---------------------------------------------------------------------------

    def update(self, order: Mapping[str, Any], *, exchange: str | None = None, known_only: bool = False) -> None:
        """Apply a ccxt unified order structure (from create_order, fetch_order, watch_orders...).

        Read: ``id``, ``clientOrderId``, ``status``, ``filled``, ``average``, ``cost``, ``amount``,
        ``price``, ``trades``, ``fee``/``fees``, ``timestamp``, ``lastTradeTimestamp``,
        ``lastUpdateTimestamp``. An open order the tracker does not know is adopted (it was placed
        elsewhere, or its create_order has not returned yet) under ``exchange``; a final one is
        dropped and counted as ``unknown_order``. ``known_only=True`` (order history) leaves
        unknown orders alone, uncounted.
        """
        if type(order) is not dict and not isinstance(order, Mapping):
            with self._lock:
                self._drop("wrong_type", order)
            return
        now = self._clock()
        get = order.get
        ids = (_id(get("clientOrderId")), _id(get("id")))
        raw_status = get("status")
        # ccxt.pro hands back the same cached dicts on every push: a repeat is recognised by what it says
        fees, trades = get("fees"), get("trades")
        raw = (get("filled"), get("average"), get("cost"), get("amount"), get("price"))
        signature = (raw_status, raw, get("fee"), len(fees) if type(fees) is list else fees,
                     len(trades) if type(trades) is list else trades, get("lastUpdateTimestamp"))  # fmt: skip
        with self._lock:
            known = self._find(*ids)
            if known is not None and known.signature == signature:
                self._touch(known, now)
                return
            numbers = _floats(raw)
            if numbers is None:
                self._drop("non_finite", order.get("id"))
                return
            status = _CCXT_STATUS.get(str(raw_status or "").lower())
            filled, average, cost, amount, price = numbers
            if known is None:
                if known_only:
                    return
                known = self._adopt(order, ids, status, amount, price, exchange, now)
                if known is None:
                    return
            else:
                self._link(known, *ids)
            self._touch(known, now)
            known.signature = signature
            if known.created_venue is None:
                known.created_venue = _ms(get("timestamp"))
            if amount is not None and amount > 0 and known.final is None and status not in ("cancelled", "expired"):
                known.amount = amount  # an amended order reports its new amount
            if known.price is None and price is not None and price > 0:
                known.price = price
            if filled is None and status == "filled" and known.filled == 0:
                filled = known.amount  # a closed order that does not say how much: all of it
            if filled is not None:
                if filled < 0:
                    self._drop("negative_fill", filled)
                    return
                if cost is None and average is not None:
                    cost = average * filled
                fee = self._ccxt_fee(known, order, average) if filled >= known.total_filled else None
                self._total(known, filled, cost, fee)
            if known.filled == 0 and known.total_filled > 0:
                # this update shows the first fill: its last fill's time is the first one's
                known.first_fill_venue = _ms(get("lastTradeTimestamp"))
            if type(trades) is list and trades:
                for trade in trades:
                    if isinstance(trade, Mapping):
                        self._ccxt_trade(known, trade, now, check=False)
            if status == "open":
                self._ack(known, now)
            venue = None
            if status in _ENDS or max(known.total_filled, known.trade_filled) >= known.amount * (1 - _TOLERANCE):
                venue = _ms(get("lastUpdateTimestamp")) or _ms(get("lastTradeTimestamp"))
            self._check_filled(known, venue, now)
            if status in FINAL_STATES and known.final is None:
                self._finish(known, status, venue, now, reason=_text(get("reason")) or "rejected")

    def trade(self, trade: Mapping[str, Any], *, known_only: bool = False) -> None:
        """Apply a ccxt unified trade structure (fetch_my_trades, watch_my_trades): a fill of ``trade["order"]``.

        A trade of an order the tracker does not know is dropped and counted as ``unknown_order``;
        ``known_only=True`` (trade history) leaves it alone, uncounted.
        """
        if not isinstance(trade, Mapping):
            with self._lock:
                self._drop("wrong_type", trade)
            return
        now = self._clock()
        with self._lock:
            order = self._find(_id(trade.get("clientOrderId")), _id(trade.get("order")))
            if order is None:
                if not known_only:
                    self._drop("unknown_order", trade.get("order"))
                return
            self._touch(order, now)
            self._ccxt_trade(order, trade, now)

    # --- internals: ids and memory -------------------------------------------------------------------

    def _find(self, client_id: str | None, exchange_id: str | None) -> _Order | None:
        if exchange_id is not None:
            found = self._by_exchange.get(exchange_id)
            if found is not None:
                return found
        if client_id is not None:
            return self._by_client.get(client_id)
        return None

    def _index(self, order: _Order, client_id: str | None, exchange_id: str | None) -> None:
        if client_id is not None:
            self._by_client[client_id] = order
            order.client_id = client_id
        if exchange_id is not None:
            self._by_exchange[exchange_id] = order
            order.exchange_id = exchange_id

    def _link(self, order: _Order, client_id: str | None, exchange_id: str | None) -> None:
        if client_id is not None and order.client_id is None and client_id not in self._by_client:
            self._by_client[client_id] = order
            order.client_id = client_id
        if exchange_id is not None and exchange_id not in self._by_exchange:
            self._by_exchange[exchange_id] = order
            if order.exchange_id is None:
                order.exchange_id = exchange_id
            else:
                order.aliases = [*(order.aliases or ()), exchange_id]

    def _event(self, order_id: object, exchange_id: object, now: float) -> _Order | None:
        """The order an explicit event is about, linked to ``exchange_id``; ``None`` (counted) when unknown."""
        key, other = _id(order_id), _id(exchange_id)
        order = None
        if key is not None:
            order = self._by_exchange.get(key) or self._by_client.get(key)
        if order is None and other is not None:
            order = self._by_exchange.get(other)
        if order is None:
            self._drop("unknown_order", order_id)
            return None
        if other is not None:
            self._link(order, None, other)
        self._touch(order, now)
        return order

    def _touch(self, order: _Order, now: float) -> None:
        order.seen_local = now
        if order.final is None:
            self._open.move_to_end(id(order))
        if now >= self._next_sweep:
            self._expire(now)

    def _admit(self, order: _Order, now: float) -> None:
        self._expire(now)
        while len(self._open) >= self._max_open:
            _, oldest = self._open.popitem(last=False)
            self._evict(oldest, "capacity")
        self._open[id(order)] = order

    def _expire(self, now: float) -> None:
        self._next_sweep = now + self._sweep_every
        limit = now - self._max_age
        while self._open:
            oldest = next(iter(self._open.values()))
            if oldest.seen_local >= limit:
                return
            self._open.popitem(last=False)
            self._evict(oldest, "age")

    def _evict(self, order: _Order, reason: str) -> None:
        order.final = "evicted"
        if order.pending:
            order.pending = False
            self._emit("orders.pending", -1.0, order)
        self._emit("orders.evicted", 1.0, None, (("reason", reason),))
        self._health.log_once(
            SUBJECT,
            "evicted:" + reason,
            "tradetel: the order tracker let go of an open order (%s); counted in tradetel.orders.evicted",
            reason,
        )
        self._retire(order)

    def _retire(self, order: _Order) -> None:
        """Remember an ended order for late updates; forget the oldest beyond ``max_ended``."""
        self._ended[id(order)] = order
        while len(self._ended) > self._max_ended:
            _, old = self._ended.popitem(last=False)
            if old.client_id is not None and self._by_client.get(old.client_id) is old:
                del self._by_client[old.client_id]
            for key in (old.exchange_id, *(old.aliases or ())):
                if key is not None and self._by_exchange.get(key) is old:
                    del self._by_exchange[key]

    # --- internals: transitions ----------------------------------------------------------------------

    def _adopt(
        self,
        raw: Mapping[str, Any],
        ids: tuple[str | None, str | None],
        status: str | None,
        amount: float | None,
        price: float | None,
        exchange: str | None,
        now: float,
    ) -> _Order | None:
        """An open order first seen in an update: tracked from here (submitted once, pending +1)."""
        symbol, side = _text(raw.get("symbol")), _text(raw.get("side"))
        if ids == (None, None) or status not in ("open", None) or not symbol or not side or not amount:
            self._drop("unknown_order", ids[1] or ids[0])
            return None
        attributes = _attributes(exchange or "unknown", symbol, side, _text(raw.get("type")) or "limit", None, None)
        order = _Order(attributes, amount, now)
        order.price = price if price is not None and price > 0 else None
        order.time_in_force = _text(raw.get("timeInForce"))
        self._index(order, *ids)
        self._admit(order, now)
        self._submit(order, None)
        return order

    def _complete(
        self,
        order: _Order,
        ids: tuple[str | None, str | None],
        amount: float,
        price: float | None,
        reference: float | None,
        intent: str | None,
        strategy: str | None,
        submitted: bool,
        submitted_at: float | None,
        now: float,
    ) -> None:
        """open() for an order already known from an update: add what the update could not say."""
        self._link(order, *ids)
        if order.price is None:
            order.price = price
        if order.decision_price is None:
            order.decision_price = reference
        if order.amount <= 0:
            order.amount = amount
        if order.decided_local is None:
            order.decided_local = now
        if submitted and order.submit_local is None:
            order.submit_local = submitted_at if submitted_at is not None else now
            self._stages(order, now)
        if order.pending is False and order.final is None and submitted:
            self._submit(order, order.submit_local)

    def _submit(self, order: _Order, at: float | None) -> None:
        order.submit_local = at
        if "submitted" in order.recorded:
            return
        order.recorded.add("submitted")
        tif = (("time_in_force", order.time_in_force),) if order.time_in_force else ()
        self._emit("orders.submitted", 1.0, order, tif)
        if order.final is None:
            order.pending = True
            self._emit("orders.pending", 1.0, order)
        if at is not None and order.decided_local is not None and at > order.decided_local:
            self._latency(order, "submit", at - order.decided_local, "local")
        self._stages(order, at if at is not None else self._clock())

    def _ack(self, order: _Order, now: float) -> None:
        if order.acked:
            return
        order.acked = True
        order.ack_local = now
        self._emit("orders.acknowledged", 1.0, order)
        reference = order.price if order.price is not None else order.decision_price
        if reference is not None:
            self._emit("orders.notional", order.amount * reference, order)
        self._stages(order, now)

    def _stages(self, order: _Order, now: float) -> None:
        """Record every stage latency whose two endpoints are now known (each once)."""
        submit = order.submit_local
        if submit is not None and order.ack_local is not None and "ack" not in order.recorded:
            order.recorded.add("ack")
            self._latency(order, "ack", order.ack_local - submit, "local")
        if order.first_fill_local is not None and "fill" not in order.recorded:
            if order.created_venue is not None and order.first_fill_venue is not None:
                order.recorded.add("fill")
                self._latency(order, "fill", order.first_fill_venue - order.created_venue, "exchange")
            elif submit is not None:
                order.recorded.add("fill")
                self._latency(order, "fill", order.first_fill_local - submit, "local")

    def _latency(self, order: _Order, stage: str, seconds: float, clock: str) -> None:
        if seconds < 0:
            self._drop("negative_latency", seconds)
            return
        self._emit("orders.latency", seconds, order, (("stage", stage), ("clock", clock)))

    def _trade(
        self,
        order: _Order,
        amount: object,
        price: object,
        fee: object,
        fee_currency: str | None,
        trade_id: str | None,
        venue: float | None,
        now: float,
        *,
        check: bool = True,
    ) -> None:
        size, cost_price = _finite(amount), _finite(price)
        if size is None or size <= 0:
            self._drop("negative_fill" if size is not None and size < 0 else "invalid_fill", amount)
            return
        if cost_price is None or cost_price <= 0:
            self._drop("invalid_price", price)
            return
        if trade_id is not None:
            seen = order.trade_ids
            if seen is None:
                seen = order.trade_ids = set()
            elif trade_id in seen:
                return
        if order.trade_filled + size > order.amount * (1 + _TOLERANCE) and order.final is None:
            self._drop("overfill", size)
            return
        fee_quote = None
        if fee is not None:
            fee_quote = self._fee_in_quote(order, fee, fee_currency, cost_price)
            if fee_quote is None:
                order.fee_lost = True  # the fill counts; the order's fee total is unknown from now on
        if trade_id is not None:
            order.trade_ids.add(trade_id)  # type: ignore[union-attr]
        order.trade_filled += size
        order.trade_cost += size * cost_price
        if fee_quote is not None:
            order.trade_fee = (order.trade_fee or 0.0) + fee_quote
        first = order.trade_filled == size  # this is the order's first individual fill
        if first and venue is not None and (order.first_fill_venue is None or venue < order.first_fill_venue):
            order.first_fill_venue = venue
        if check:
            self._check_filled(order, venue, now)

    def _ccxt_trade(self, order: _Order, trade: Mapping[str, Any], now: float, *, check: bool = True) -> None:
        fee_cost, fee_currency = _ccxt_fee_parts(trade)
        if fee_cost is _INVALID:
            self._drop("non_finite", trade.get("id"))
            return
        self._trade(
            order,
            trade.get("amount"),
            trade.get("price"),
            fee_cost,
            fee_currency,
            _id(trade.get("id")),
            _ms(trade.get("timestamp")),
            now,
            check=check,
        )

    def _ccxt_fee(self, order: _Order, raw: Mapping[str, Any], average: float | None) -> float | None:
        cost, currency = _ccxt_fee_parts(raw)
        if cost is None or cost is _INVALID:
            return None
        price = average if average is not None else order.price
        if price is None:
            return None
        return self._fee_in_quote(order, cost, currency, price)

    def _fee_in_quote(self, order: _Order, fee: object, currency: str | None, price: float) -> float | None:
        value = _finite(fee)
        if value is None:
            self._drop("invalid_fee", fee)
            return None
        if currency is None:
            return value
        if order.currencies is None:
            order.currencies = _currencies(order.attribute("symbol"))
        base, quote = order.currencies
        if currency == quote:
            return value
        if currency == base:
            return value * price
        self._drop("fee_currency", currency)
        return None

    def _total(self, order: _Order, filled: float, cost: float | None, fee: float | None) -> None:
        """A cumulative fill total: the largest one seen is the truth, stale ones change nothing."""
        if filled > order.amount * (1 + _TOLERANCE) and filled > order.total_filled:
            self._drop("overfill", filled)
            return
        if filled > order.total_filled:
            order.total_filled = filled
            order.total_cost = cost
            order.total_fee = fee
        elif filled == order.total_filled:
            if order.total_cost is None and cost is not None:
                order.total_cost = cost
            if fee is not None:
                order.total_fee = fee

    def _check_filled(self, order: _Order, venue: float | None, now: float) -> None:
        """Derive transitions from the filled quantity: first fill, partial fill, complete fill."""
        filled = max(order.trade_filled, order.total_filled)
        if filled <= order.filled:
            return
        if order.final is not None:
            if filled > order.filled * (1 + _TOLERANCE) and order.final != "evicted":
                # fills beyond what the final state reported: its per-order results are already recorded
                self._drop("late_fill", filled - order.filled)
            order.filled = filled
            return
        order.filled = filled
        self._ack(order, now)
        if order.first_fill_local is None:
            order.first_fill_local = now
            self._stages(order, now)
        if filled >= order.amount * (1 - _TOLERANCE):
            self._finish(order, "filled", venue, now)
        elif "partial" not in order.recorded:
            order.recorded.add("partial")
            self._emit("orders.partially_filled", 1.0, order)

    def _end(
        self,
        order_id: object,
        exchange_id: object,
        state: str,
        filled: float | None,
        average: float | None,
        fee: float | None,
        timestamp: float | None,
        *,
        reason: str = "rejected",
    ) -> None:
        now = self._clock()
        with self._lock:
            order = self._event(order_id, exchange_id, now)
            if order is None or order.final is not None:
                return
            total, price, fee_total = _finite(filled), _finite(average), _finite(fee)
            if (filled is not None and (total is None or total < 0)) or (
                average is not None and (price is None or price <= 0)
            ):
                self._drop("invalid_fill", filled if total is None or total < 0 else average)
                return
            if fee is not None and fee_total is None:
                self._drop("invalid_fee", fee)
                return
            if total is not None:
                self._total(order, total, total * price if price is not None else None, fee_total)
                self._check_filled(order, None, now)
                if order.final is not None:
                    return  # the reported total completed the order: it ended filled
            self._finish(order, state, _finite(timestamp), now, reason=reason)

    def _finish(self, order: _Order, state: str, venue: float | None, now: float, *, reason: str = "rejected") -> None:
        """The final transition: counted once, pending -1, per-order results recorded."""
        if state != "rejected":
            self._ack(order, now)
        order.final = state
        self._open.pop(id(order), None)
        if order.pending:
            order.pending = False
            self._emit("orders.pending", -1.0, order)
        if state == "rejected":
            self._emit("orders.rejected", 1.0, order, (("reason", reason),))
        else:
            self._emit("orders." + state, 1.0, order)
        state_attribute = (("state", state),)
        submit = order.submit_local
        if order.created_venue is not None and venue is not None:
            self._latency(order, "final", venue - order.created_venue, "exchange")
            if state != "rejected":
                self._emit_seconds(
                    "orders.time_in_book", venue - order.created_venue, order, state_attribute, "exchange"
                )
        elif submit is not None:
            self._latency(order, "final", now - submit, "local")
            if state != "rejected" and order.ack_local is not None:
                self._emit_seconds("orders.time_in_book", now - order.ack_local, order, state_attribute, "local")
        if state == "cancelled" and order.cancel_local is not None:
            self._latency(order, "cancel", now - order.cancel_local, "local")
        if state != "rejected":
            filled = order.filled
            self._emit("orders.fill_ratio", min(filled / order.amount, 1.0), order, state_attribute)
            if filled > 0:
                self._results(order, filled)
        self._retire(order)

    def _results(self, order: _Order, filled: float) -> None:
        """Slippage of the volume-weighted fill price and fees, from the source that gave the filled quantity."""
        if order.total_filled >= order.trade_filled:
            cost, fee = order.total_cost, order.total_fee
            if order.trade_filled >= order.total_filled * (1 - _TOLERANCE):  # the fills add up to the total
                if cost is None and order.cost_known:
                    cost = order.trade_cost * (filled / order.trade_filled)
                if fee is None and not order.fee_lost:
                    fee = order.trade_fee
        else:
            cost = order.trade_cost if order.cost_known else None
            fee = None if order.fee_lost else order.trade_fee
        if fee is not None:
            self._emit("orders.fees", fee, order)
        if cost is None:
            self._drop("no_fill_price", order.exchange_id or order.client_id)
            return
        average = cost / filled
        side = order.attribute("side")
        sign = 1.0 if side == "buy" else -1.0 if side == "sell" else 0.0
        if not sign:
            return
        for reference, name in ((order.decision_price, "decision"), (order.price, "limit")):
            if reference is not None:
                bps = sign * (average - reference) / reference * 1e4
                self._emit("orders.slippage", bps, order, (("reference", name),))

    def _emit_seconds(
        self, name: str, seconds: float, order: _Order, extra: tuple[tuple[str, str], ...], clock: str
    ) -> None:
        if seconds < 0:
            self._drop("negative_latency", seconds)
            return
        self._emit(name, seconds, order, (*extra, ("clock", clock)))

    def _emit(self, name: str, value: float, order: _Order | None, extra: tuple[tuple[str, str], ...] = ()) -> None:
        """Record into one instrument with the order's attributes that it accepts (bound series, cached).

        With exemplars on, the measurement's exemplar carries ``order_id`` (the client id, else the
        exchange id) besides what :func:`tradetel.exemplar` blocks around the caller give, and the
        active span's trace id as every exemplar does.
        """
        entry = self._handles.get(name)
        if entry is None:
            return
        base = order.attributes if order is not None else ()
        key = (name, base, extra)
        record = self._series.get(key)
        if record is None:
            handle, keys, method = entry
            attributes = {k: v for k, v in (*base, *extra) if k in keys}
            record = getattr(handle.bind(**attributes), method)
            if len(self._series) >= _MAX_SERIES:
                self._series.clear()
            self._series[key] = record
        order_id = (order.client_id or order.exchange_id) if self._exemplars and order is not None else None
        if order_id is None:
            record(value)
            return
        outer = exemplar_attributes()
        token = set_exemplar_attributes({**outer, "order_id": order_id} if outer else {"order_id": order_id})
        try:
            record(value)
        finally:
            reset_exemplar_attributes(token)

    def _drop(self, reason: str, value: object) -> None:
        self._health.drop(SUBJECT, reason, value)


# --- parsing helpers -------------------------------------------------------------------------------

_INVALID: Any = object()


def _id(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return str(value) if isinstance(value, float) and math.isfinite(value) else None


def _finite(value: object) -> float | None:
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else None  # type: ignore[operator,return-value]  # NaN, inf
    if kind is int:
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            return None
    if value is None or kind is bool:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ArithmeticError):
        return None
    return number if math.isfinite(number) else None


def _floats(values: tuple[Any, ...]) -> tuple[float | None, ...] | None:
    """The values as floats (``None`` stays ``None``); ``None`` for the whole when one is present but unusable."""
    out: list[float | None] = []
    for value in values:
        if type(value) is float and value - value == 0.0:  # ccxt's usual case, finite
            out.append(value)
        elif value is None:
            out.append(None)
        else:
            number = _finite(value)
            if number is None:
                return None
            out.append(number)
    return tuple(out)


def _ms(value: object) -> float | None:
    number = _finite(value)
    return number / 1000.0 if number is not None and number > 0 else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _attributes(
    exchange: object, symbol: object, side: object, order_type: object, intent: object, strategy: object
) -> tuple[tuple[str, str], ...]:
    pairs = (
        ("exchange", exchange),
        ("symbol", symbol),
        ("side", side),
        ("order_type", order_type),
        ("intent", intent),
        ("strategy", strategy),
    )
    return tuple((k, str(v).lower() if k in ("side", "order_type") else str(v)) for k, v in pairs if v is not None)


def _currencies(symbol: str | None) -> tuple[str | None, str | None]:
    """Base and quote of a ccxt symbol: ``BTC/USDT`` and ``BTC/USDT:USDT`` give ``("BTC", "USDT")``."""
    if not symbol or "/" not in symbol:
        return None, None
    base, _, rest = symbol.partition("/")
    return base, rest.partition(":")[0]


def _ccxt_fee_parts(raw: Mapping[str, Any]) -> tuple[Any, str | None]:
    """A ccxt structure's total fee and its currency: ``fees`` (summed, one currency) or ``fee``.

    ``(None, None)`` when absent or in several currencies; ``(_INVALID, None)`` when unusable.
    """
    fees = raw.get("fees")
    usual = fees[0] if type(fees) is list and len(fees) == 1 else raw.get("fee") if not fees else None
    if type(usual) is dict:  # one fee in one currency: ccxt's usual case
        cost, currency = usual.get("cost"), usual.get("currency")
        if type(cost) is float and cost - cost == 0.0 and (currency is None or type(currency) is str):
            return cost, currency or None
    entries = [f for f in fees if isinstance(f, Mapping)] if isinstance(fees, list) and fees else []
    if not entries:
        fee = raw.get("fee")
        entries = [fee] if isinstance(fee, Mapping) else []
    total, currency = 0.0, None
    for entry in entries:
        cost = entry.get("cost")
        if cost is None:
            continue
        number = _finite(cost)
        if number is None:
            return _INVALID, None
        code = _text(entry.get("currency"))
        if currency is not None and code != currency:
            return None, None
        currency = code
        total += number
    if currency is None and total == 0.0 and not any(e.get("cost") is not None for e in entries):
        return None, None
    return total, currency
