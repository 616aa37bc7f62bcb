"""Generated order histories: every metric the tracker derives equals the truth computed from the history.

A history is what a venue and a bot say about each order: the submission,
the acknowledgement, each fill (explicit events or ccxt trades), cumulative
ccxt order updates and the final state. Delivery shuffles them, duplicates
some, lets the exchange's first update arrive before the submission is
recorded (the ccxt race), and lets fills and cancel requests arrive after
the order ended. The truth is computed here from the delivered sequence
with the venue's semantics, independently of the tracker's code, and
compared with what the tracker recorded.

Amounts, prices and fees are multiples of 0.25, so sums are exact.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import math
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradetel._lifecycle import OrderTracker
from tradetel.testing import Capture, capture

NOW: contextvars.ContextVar[float] = contextvars.ContextVar("now", default=0.0)
"""The local clock of the worker delivering the current message (each thread and task has its own)."""

EXCHANGE = "sim"
QUOTE = "USDT"


@dataclass
class Message:
    """One delivery to the tracker and what it says about the order, for the truth below."""

    apply: Callable[[OrderTracker], None]
    kind: str  # open, ack, trade, total, final, cancel_request
    ccxt: bool = False  # a ccxt order update: tells the venue's creation time
    acks: bool = True  # evidence that the venue accepted the order
    trade: tuple[str, float, float, float] | None = None  # id, amount, cost, fee
    total: tuple[float, float, float] | None = None  # cumulative filled, cost, fee
    final: str | None = None
    venue: float | None = None  # the venue time this message carries (s)
    adoptable: bool = False  # an open ccxt update the tracker may see before the submission


@dataclass
class History:
    """One order's truth and the messages to deliver."""

    index: int
    side: str
    amount: float
    price: float
    decision: float
    created: float
    final: str
    fills: list[tuple[float, float, float]]  # amount, price, fee
    messages: list[Message] = field(default_factory=list)
    open_after: int = 0  # venue messages delivered before the submission is recorded

    @property
    def cid(self) -> str:
        return f"c{self.index}"

    @property
    def xid(self) -> str:
        return f"x{self.index}"

    @property
    def filled(self) -> float:
        return sum(q for q, _, _ in self.fills)

    @property
    def cost(self) -> float:
        return sum(q * p for q, p, _ in self.fills)

    @property
    def fee(self) -> float:
        return sum(f for _, _, f in self.fills)


def _quarters(rng: random.Random, low: int, high: int) -> float:
    return rng.randint(low, high) * 0.25


def _split(rng: random.Random, total: float) -> list[float]:
    units = round(total * 4)
    if units == 0:
        return []
    parts = rng.randint(1, min(4, units))
    cuts = sorted(rng.sample(range(1, units), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, units]
    return [(b - a) * 0.25 for a, b in itertools.pairwise(bounds)]


def generate(rng: random.Random, index: int) -> History:
    """One order with its venue truth, then the messages that report it."""
    side = rng.choice(("buy", "sell"))
    amount = _quarters(rng, 1, 40)
    price = _quarters(rng, 400, 800)
    final = rng.choices(("filled", "cancelled", "expired", "rejected"), (50, 25, 15, 10))[0]
    if final == "filled":
        total = amount
    elif final == "rejected":
        total = 0.0
    else:
        total = _quarters(rng, 0, round(amount * 4) - 1)
    fills = [(q, price + _quarters(rng, -8, 8), _quarters(rng, 0, 2)) for q in _split(rng, total)]
    history = History(
        index,
        side,
        amount,
        price,
        decision=price + _quarters(rng, -8, 8),
        created=1_000.0 + index,
        final=final,
        fills=fills,
    )
    history.messages = _messages(rng, history)
    return history


def _update(h: History, status: str, filled: float, cost: float, fee: float, venue: float) -> dict[str, Any]:
    return {
        "id": h.xid,
        "clientOrderId": h.cid,
        "symbol": f"BTC/{QUOTE}",
        "side": h.side,
        "type": "limit",
        "status": status,
        "amount": h.amount,
        "price": h.price,
        "filled": filled,
        "remaining": h.amount - filled,
        "cost": cost,
        "fee": {"cost": fee, "currency": QUOTE},
        "timestamp": int(h.created * 1000),
        "lastUpdateTimestamp": int(venue * 1000),
    }


def _messages(rng: random.Random, h: History) -> list[Message]:
    out: list[Message] = []
    cid = h.cid
    if h.final == "rejected":
        venue = h.created + 0.5
        if rng.random() < 0.5:
            update = _update(h, "rejected", 0.0, 0.0, 0.0, venue)
            out.append(
                Message(
                    lambda t, u=update: t.update(u, exchange=EXCHANGE),
                    "final",
                    ccxt=True,
                    acks=False,
                    final="rejected",
                    venue=venue,
                )
            )
        else:
            out.append(
                Message(
                    lambda t: t.rejected(cid, "insufficient balance", timestamp=venue),
                    "final",
                    acks=False,
                    final="rejected",
                    venue=venue,
                )
            )
        return _deliver(rng, h, out)
    if rng.random() < 0.5:
        update = _update(h, "open", 0.0, 0.0, 0.0, h.created)
        out.append(
            Message(
                lambda t, u=update: t.update(u, exchange=EXCHANGE), "ack", ccxt=True, venue=h.created, adoptable=True
            )
        )
    else:
        out.append(
            Message(lambda t: t.acked(cid, exchange_id=h.xid, timestamp=h.created), "ack", ccxt=True, venue=h.created)
        )
    filled = cost = fee = 0.0
    for j, (q, p, f) in enumerate(h.fills):
        venue = h.created + 1 + j
        tid = f"t{h.index}-{j}"
        if rng.random() < 0.5:
            message = Message(
                lambda t, q=q, p=p, f=f, tid=tid, v=venue: t.fill(cid, q, p, fee=f, trade_id=tid, timestamp=v), "trade"
            )
        else:
            trade = {"id": tid, "order": h.xid, "clientOrderId": cid, "symbol": f"BTC/{QUOTE}", "side": h.side,
                     "amount": q, "price": p, "cost": q * p, "fee": {"cost": f, "currency": QUOTE},
                     "timestamp": int(venue * 1000)}  # fmt: skip
            message = Message(lambda t, tr=trade: t.trade(tr), "trade")
        message.trade, message.venue = (tid, q, q * p, f), venue
        out.append(message)
        filled, cost, fee = filled + q, cost + q * p, fee + f
        if rng.random() < 0.7:
            status = "closed" if filled == h.amount else "open"
            update = _update(h, status, filled, cost, fee, venue)
            ends = "filled" if status == "closed" else None
            apply = _apply_update(update)
            out.append(Message(apply, "total", ccxt=True, total=(filled, cost, fee), final=ends, venue=venue))
    if h.final in ("cancelled", "expired"):
        venue = h.created + 10
        total = (h.filled, h.cost, h.fee)
        if h.final == "cancelled" and rng.random() < 0.7:
            out.append(Message(lambda t: t.cancel_requested(cid), "cancel_request", acks=False))
        if rng.random() < 0.5:
            update = _update(h, "canceled" if h.final == "cancelled" else "expired", *total, venue)
            out.append(
                Message(
                    lambda t, u=update: t.update(u, exchange=EXCHANGE),
                    "final",
                    ccxt=True,
                    total=total,
                    final=h.final,
                    venue=venue,
                )
            )
        else:
            end = getattr(OrderTracker, h.final)
            average = h.cost / h.filled if h.filled else None
            apply = _apply_end(end, cid, h.filled, average, h.fee, venue)
            out.append(Message(apply, "final", total=total, final=h.final, venue=venue))
    elif rng.random() < 0.5:
        venue = h.created + 10
        update = _update(h, "closed", h.filled, h.cost, h.fee, venue)
        out.append(
            Message(
                lambda t, u=update: t.update(u, exchange=EXCHANGE),
                "final",
                ccxt=True,
                total=(h.filled, h.cost, h.fee),
                final="filled",
                venue=venue,
            )
        )
    return _deliver(rng, h, out)


def _apply_update(update: dict[str, Any]) -> Callable[[OrderTracker], None]:
    return lambda tracker: tracker.update(update, exchange=EXCHANGE)


def _apply_end(
    end: Callable[..., None], cid: str, filled: float, average: float | None, fee: float, venue: float
) -> Callable[[OrderTracker], None]:
    return lambda tracker: end(tracker, cid, filled=filled, average=average, fee=fee, timestamp=venue)


def _deliver(rng: random.Random, h: History, venue_messages: list[Message]) -> list[Message]:
    """Shuffle, duplicate, and place the submission: first, or after the venue's first open update."""
    delivered = list(venue_messages)
    for message in venue_messages:
        if rng.random() < 0.3:
            delivered.append(message)
    rng.shuffle(delivered)
    opener = Message(lambda t: None, "open", acks=False)
    position = 0
    if delivered and delivered[0].adoptable and rng.random() < 0.5:
        position = 1
        while position < len(delivered) and delivered[position].adoptable and rng.random() < 0.5:
            position += 1
    h.open_after = position
    delivered.insert(position, opener)
    return delivered


def _open(h: History, tracker: OrderTracker, submitted_at: float) -> None:
    tracker.open(h.cid, exchange=EXCHANGE, symbol=f"BTC/{QUOTE}", side=h.side, amount=h.amount, price=h.price,
                 decision_price=h.decision, intent="entry", submitted_at=submitted_at)  # fmt: skip


# --- the truth -------------------------------------------------------------------------------------


@dataclass
class Truth:
    counts: Counter[str] = field(default_factory=Counter)
    latency: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    time_in_book: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    fill_ratio: list[float] = field(default_factory=list)
    slippage: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    fees: float = 0.0

    def merge(self, other: Truth) -> None:
        self.counts.update(other.counts)
        for key, values in other.latency.items():
            self.latency[key].extend(values)
        for key, values in other.time_in_book.items():
            self.time_in_book[key].extend(values)
        self.fill_ratio.extend(other.fill_ratio)
        for key, values in other.slippage.items():
            self.slippage[key].extend(values)
        self.fees += other.fees


def truth_of(h: History, times: list[float], submitted_at: float, into: Truth) -> None:
    """What the venue's semantics say each metric is, given the order the messages were delivered in."""
    into.counts["submitted"] += 1
    trades: dict[str, tuple[float, float, float]] = {}
    total = (0.0, 0.0, 0.0)
    created_known = False
    ack_at = cancel_at = first_fill = None
    partial = False
    end: tuple[str, float, float | None, Message] | None = None
    for message, now in zip(h.messages, times, strict=True):
        if message.kind == "open":
            continue
        if message.kind == "cancel_request":
            cancel_at = now if cancel_at is None else cancel_at
            continue
        if message.ccxt:
            created_known = True
        if message.trade is not None:
            trades.setdefault(message.trade[0], message.trade[1:])
        if message.total is not None and message.total[0] > total[0]:
            total = message.total
        trade_filled = sum(q for q, _, _ in trades.values())
        view = max(trade_filled, total[0])
        if message.acks and ack_at is None:
            ack_at = now
        if view > 0 and first_fill is None:
            first_fill = (now, message, created_known)
        if 0 < view < h.amount:
            partial = True
        if view >= h.amount:
            end = ("filled", now, message.venue, message)
        elif message.final is not None:
            end = (message.final, now, message.venue, message)
        if end is not None:
            break
    assert end is not None, f"order {h.index} never ends"
    state, end_at, venue, _ = end
    into.counts[state] += 1
    into.counts["partial"] += partial
    if state != "rejected":
        into.counts["acknowledged"] += 1
        assert ack_at is not None
        into.latency["ack", "local"].append(ack_at - submitted_at)
    if first_fill is not None:
        at, message, known = first_fill
        if message.kind == "trade" and known:
            into.latency["fill", "exchange"].append(message.venue - h.created)
        else:
            into.latency["fill", "local"].append(at - submitted_at)
    if venue is not None and created_known:
        into.latency["final", "exchange"].append(venue - h.created)
        if state != "rejected":
            into.time_in_book["exchange"].append(venue - h.created)
    else:
        into.latency["final", "local"].append(end_at - submitted_at)
        if state != "rejected":
            into.time_in_book["local"].append(end_at - ack_at)
    if state == "cancelled" and cancel_at is not None:
        into.latency["cancel", "local"].append(end_at - cancel_at)
    if state != "rejected":
        into.fill_ratio.append(h.filled / h.amount)
        if h.filled > 0:
            average = h.cost / h.filled
            sign = 1.0 if h.side == "buy" else -1.0
            into.slippage["decision"].append(sign * (average - h.decision) / h.decision * 1e4)
            into.slippage["limit"].append(sign * (average - h.price) / h.price * 1e4)
            into.fees += h.fee


# --- delivery ----------------------------------------------------------------------------------------


def schedule(rng: random.Random, histories: list[History]) -> list[tuple[History, int]]:
    """Interleave the orders' message lists at random, each list keeping its own order."""
    pending = [(h, len(h.messages)) for h in histories]
    slots = [h for h, n in pending for _ in range(n)]
    rng.shuffle(slots)
    position: dict[int, int] = defaultdict(int)
    out = []
    for h in slots:
        out.append((h, position[h.index]))
        position[h.index] += 1
    return out


def deliver(
    tracker: OrderTracker, plan: list[tuple[History, int]], clock_start: float, truth: Truth
) -> list[Callable[[], None]]:
    """The steps of one worker: set its clock, then deliver; the truth is computed from the same times."""
    times: dict[int, list[float]] = defaultdict(list)
    steps: list[Callable[[], None]] = []
    submitted: dict[int, float] = {}
    for step, (h, i) in enumerate(plan):
        now = clock_start + step
        times[h.index].append(now)
        message = h.messages[i]
        if message.kind == "open":
            # the bot took its submit time before the call; the venue's first update may beat the return
            first = times[h.index][0]
            at = first - 0.5 if i > 0 else now
            submitted[h.index] = at

            def run(now: float = now, h: History = h, at: float = at) -> None:
                NOW.set(now)
                _open(h, tracker, at)

        else:

            def run(now: float = now, message: Message = message) -> None:
                NOW.set(now)
                message.apply(tracker)

        steps.append(run)
    for h in {h.index: h for h, _ in plan}.values():
        truth_of(h, times[h.index], submitted[h.index], truth)
    return steps


def check(cap: Capture, truth: Truth, orders: int) -> None:
    """Compare every derived metric with the truth."""
    tracker = cap.telemetry.order_tracker
    assert tracker.open_orders == 0
    assert cap.value("orders.pending") == 0
    assert cap.dropped() == 0
    assert cap.value("tradetel.orders.evicted") == 0
    assert cap.value("orders.submitted") == truth.counts["submitted"] == orders
    for state in ("filled", "cancelled", "expired", "rejected", "acknowledged"):
        assert cap.value(f"orders.{state}") == truth.counts[state], state
    assert cap.value("orders.partially_filled") == truth.counts["partial"]
    for (stage, clock), values in truth.latency.items():
        got = cap.histogram("orders.latency", stage=stage, clock=clock)
        assert got.count == len(values), (stage, clock)
        assert math.isclose(got.sum, math.fsum(values), abs_tol=1e-6), (stage, clock)
    assert cap.histogram("orders.latency").count == sum(len(v) for v in truth.latency.values())
    for clock, values in truth.time_in_book.items():
        got = cap.histogram("orders.time_in_book", clock=clock)
        assert (got.count, round(got.sum, 6)) == (len(values), round(math.fsum(values), 6)), clock
    ratio = cap.histogram("orders.fill_ratio")
    assert ratio.count == len(truth.fill_ratio)
    assert math.isclose(ratio.sum, math.fsum(truth.fill_ratio), rel_tol=1e-9, abs_tol=1e-9)
    for reference in ("decision", "limit"):
        got = cap.histogram("orders.slippage", reference=reference)
        assert got.count == len(truth.slippage[reference]), reference
        assert math.isclose(got.sum, math.fsum(truth.slippage[reference]), rel_tol=1e-9, abs_tol=1e-6), reference
    assert cap.value("orders.fees") == truth.fees


def _clock() -> float:
    return NOW.get()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=40))
def test_generated_histories_match_the_truth(rng: random.Random, orders: int) -> None:
    """Shuffled, duplicated and late updates of up to 40 orders give exactly the metrics of the venue's truth."""
    histories = [generate(rng, i) for i in range(orders)]
    with capture() as cap:
        cap.telemetry._order_tracker = tracker = OrderTracker(cap.telemetry, clock=_clock, max_age=1e12)
        truth = Truth()
        for run in deliver(tracker, schedule(rng, histories), 0.0, truth):
            run()
        check(cap, truth, orders)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32))
def test_ten_thousand_orders_across_threads_and_tasks(seed: int) -> None:
    """12,000 generated orders delivered at once by 4 threads and 8 asyncio tasks match the truth exactly."""
    rng = random.Random(seed)  # hypothesis draws the seed: ten thousand orders overflow its own buffer
    threads, tasks, per_worker = 4, 8, 1_000
    workers = threads + tasks
    histories = [generate(rng, i) for i in range(workers * per_worker)]
    with capture() as cap:
        tracker = OrderTracker(cap.telemetry, clock=_clock, max_age=1e12, max_open=20_000)
        cap.telemetry._order_tracker = tracker
        truth = Truth()
        plans = [
            deliver(tracker, schedule(rng, histories[w * per_worker : (w + 1) * per_worker]), 1e6 * w, truth)
            for w in range(workers)
        ]
        errors: list[BaseException] = []
        start = threading.Barrier(threads + 1)

        def in_thread(steps: list[Callable[[], None]]) -> None:
            try:
                start.wait()
                for run in steps:
                    run()
            except BaseException as error:  # surfaced below
                errors.append(error)

        async def in_task(steps: list[Callable[[], None]], seed: int) -> None:
            pause = random.Random(seed)
            for run in steps:
                run()
                if pause.random() < 0.2:
                    await asyncio.sleep(0)

        async def all_tasks() -> None:
            await asyncio.gather(*(in_task(plans[threads + k], k) for k in range(tasks)))

        running = [threading.Thread(target=in_thread, args=(plans[k],)) for k in range(threads)]
        for thread in running:
            thread.start()
        start.wait()
        asyncio.run(all_tasks())
        for thread in running:
            thread.join()
        assert not errors
        check(cap, truth, workers * per_worker)
