"""A backtest engine that fills orders on later bars, followed by the order tracker through a small adapter.

The engine knows nothing of tradetel: it queues limit orders when the
strategy decides, fills them on later bars when the price trades through
the limit (at most a share of each bar's volume, so large orders fill in
parts) and expires what is still open after ``ttl`` bars. The adapter turns
its callbacks into tracker events, with the bar's time as the venue clock,
so time to first fill, time to final state and time in book are in
simulated seconds::

    python examples/backtest_orders.py --bars 400 --seed 7
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import tradetel
from tradetel.orders import OrderTracker
from tradetel.testing import Capture

SYMBOL = "BTC/USDT"
BAR_SECONDS = 60.0


@dataclass
class Order:
    """An order as the engine keeps it."""

    id: str
    side: str
    amount: float
    limit: float
    decided_price: float
    placed_bar: int
    filled: float = 0.0
    cost: float = 0.0
    status: str = "open"  # open, filled, expired
    fills: int = 0
    closed_bar: int | None = None


@dataclass
class Engine:
    """Queues orders, fills them on later bars, expires them; calls ``listener`` for each event."""

    rng: random.Random
    ttl: int = 5
    listener: Callable[..., None] = lambda *args, **kwargs: None
    open: dict[str, Order] = field(default_factory=dict)
    closed: list[Order] = field(default_factory=list)
    next_id: int = 0

    def submit(self, side: str, amount: float, limit: float, price: float, bar: int) -> Order:
        self.next_id += 1
        order = Order(f"bt-{self.next_id}", side, amount, limit, price, bar)
        self.open[order.id] = order
        self.listener("submitted", order, bar)
        return order

    def on_bar(self, bar: int, low: float, high: float, volume: float) -> None:
        """Match the open orders against this bar, then expire the old ones."""
        for order in list(self.open.values()):
            if bar <= order.placed_bar:
                continue  # an order never fills on the bar it was placed
            crossed = low <= order.limit if order.side == "buy" else high >= order.limit
            if crossed:
                quantity = min(order.amount - order.filled, round(volume * self.rng.uniform(0.2, 0.6), 3))
                if quantity > 0:
                    price = order.limit if self.rng.random() < 0.7 else (low + order.limit) / 2
                    if order.side == "sell":
                        price = order.limit if self.rng.random() < 0.7 else (high + order.limit) / 2
                    order.filled = round(order.filled + quantity, 3)
                    order.cost += quantity * price
                    order.fills += 1
                    self.listener("fill", order, bar, quantity=quantity, price=price)
                    if order.filled >= order.amount:
                        order.status = "filled"
                        self._close(order, bar)
                        continue
            if bar - order.placed_bar >= self.ttl:
                order.status = "expired"
                self._close(order, bar)

    def _close(self, order: Order, bar: int) -> None:
        order.closed_bar = bar
        del self.open[order.id]
        self.closed.append(order)
        self.listener(order.status, order, bar)


class TrackerAdapter:
    """Engine callbacks → order tracker events; the bar time is the venue's timestamp."""

    def __init__(self, tracker: OrderTracker, *, exchange: str = "backtest", strategy: str = "mean_revert") -> None:
        self.tracker = tracker
        self.exchange = exchange
        self.strategy = strategy
        self.fills = 0

    def __call__(self, event: str, order: Order, bar: int, **details: float) -> None:
        at = bar * BAR_SECONDS
        if event == "submitted":
            self.tracker.open(order.id, exchange=self.exchange, symbol=SYMBOL, side=order.side, amount=order.amount,
                              price=order.limit, decision_price=order.decided_price, strategy=self.strategy,
                              intent="entry")  # fmt: skip
            self.tracker.acked(order.id, timestamp=at)  # the engine accepts every order on its bar
        elif event == "fill":
            self.fills += 1
            trade_id = f"{order.id}-{self.fills}"
            self.tracker.fill(order.id, details["quantity"], details["price"], trade_id=trade_id, timestamp=at)
        elif event == "expired":
            self.tracker.expired(order.id, filled=order.filled, timestamp=at)
        # "filled" needs no event: the tracker sees the last fill complete the order


def bars(count: int, seed: int) -> list[tuple[float, float, float, float]]:
    """Seeded bars: (close, low, high, volume)."""
    rng = random.Random(seed)
    price, out = 30_000.0, []
    for _ in range(count):
        price *= 1 + rng.gauss(0, 0.002)
        spread = price * abs(rng.gauss(0, 0.0015))
        out.append((price, price - spread, price + spread, rng.uniform(0.5, 3.0)))
    return out


def run(telemetry: tradetel.Telemetry, *, bars_count: int = 400, seed: int = 7) -> Engine:
    """Place a limit order 0.1 % through the close every few bars; return the engine (its records are the truth)."""
    rng = random.Random(seed + 1)
    engine = Engine(rng)
    engine.listener = TrackerAdapter(telemetry.order_tracker)
    for bar, (close, low, high, volume) in enumerate(bars(bars_count, seed)):
        engine.on_bar(bar, low, high, volume)
        if bar % 3 == 0:
            side = rng.choice(("buy", "sell"))
            limit = round(close * (0.999 if side == "buy" else 1.001), 2)
            engine.submit(side, round(rng.uniform(0.5, 4.0), 3), limit, close, bar)
    return engine


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tradetel.configure(service_name="backtest-orders", exporters="none", env={}) as telemetry:
        engine = run(telemetry, bars_count=args.bars, seed=args.seed)
        metrics = Capture(telemetry)
        book = metrics.histogram("orders.time_in_book", clock="exchange")
        slippage = metrics.histogram("orders.slippage", reference="decision")
        print(f"orders          {metrics.value('orders.submitted'):.0f} (engine placed {engine.next_id})")
        print(f"filled          {metrics.value('orders.filled'):.0f}")
        print(f"expired         {metrics.value('orders.expired'):.0f}")
        print(f"still open      {metrics.value('orders.pending'):.0f} (engine: {len(engine.open)})")
        print(f"mean in book    {book.sum / max(book.count, 1):.0f} s")
        print(f"mean slippage   {slippage.sum / max(slippage.count, 1):+.2f} bp against the decision price")


if __name__ == "__main__":
    main()
