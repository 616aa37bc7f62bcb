"""A FIX-style custom venue: execution reports, resent and out of order, fed to the order tracker.

A simulated venue answers NewOrderSingle messages with ExecutionReports
(``35=8``) in tag=value form: new, partial fills, fills, cancels, rejects,
expiries. Its session layer resends some reports (``43=Y``, possible
duplicate) and delivers a few late. The handler maps each report to a
tracker event; the tracker makes resends and late reports harmless::

    python examples/fix_venue.py --orders 200 --seed 3
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field

import tradetel
from tradetel.orders import OrderTracker
from tradetel.testing import Capture

SOH = "\x01"
EXCHANGE = "fixvenue"


def encode(fields: dict[int, str]) -> str:
    return SOH.join(f"{tag}={value}" for tag, value in fields.items()) + SOH


def decode(message: str) -> dict[int, str]:
    return {int(tag): value for tag, _, value in (pair.partition("=") for pair in message.split(SOH) if pair)}


@dataclass
class VenueOrder:
    """The venue's truth about one order."""

    cl_ord_id: str
    side: str
    quantity: float
    price: float
    outcome: str
    fills: list[tuple[float, float]] = field(default_factory=list)


class Venue:
    """Accepts orders, decides their fate from a seed, and emits their ExecutionReports."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.orders: list[VenueOrder] = []
        self.sequence = 0

    def new_order_single(self, cl_ord_id: str, side: str, quantity: float, price: float) -> list[str]:
        rng = self.rng
        outcome = rng.choices(("filled", "cancelled", "expired", "rejected"), (55, 20, 15, 10))[0]
        order = VenueOrder(cl_ord_id, side, quantity, price, outcome)
        self.orders.append(order)
        order_id = f"V{len(self.orders):06d}"
        if outcome == "rejected":
            return [self._report(order, order_id, "8", "8", 0.0, 0.0, text="Order exceeds maximum quantity")]
        reports = [self._report(order, order_id, "0", "0", 0.0, 0.0)]
        remaining = round(quantity * 4) if outcome == "filled" else rng.randint(0, round(quantity * 4) - 1)
        cum, cost = 0.0, 0.0
        while remaining > 0:
            lots = rng.randint(1, remaining)
            remaining -= lots
            last_qty, last_px = lots * 0.25, price + rng.choice((-0.5, -0.25, 0.0))
            cum, cost = cum + last_qty, cost + last_qty * last_px
            order.fills.append((last_qty, last_px))
            status = "2" if outcome == "filled" and remaining == 0 else "1"
            reports.append(self._report(order, order_id, "F", status, cum, cost, last=(last_qty, last_px)))
        if outcome in ("cancelled", "expired"):
            status = "4" if outcome == "cancelled" else "C"
            reports.append(self._report(order, order_id, status, status, cum, cost))
        return reports

    def _report(
        self,
        order: VenueOrder,
        order_id: str,
        exec_type: str,
        status: str,
        cum: float,
        cost: float,
        *,
        last: tuple[float, float] | None = None,
        text: str | None = None,
    ) -> str:
        self.sequence += 1
        fields = {35: "8", 34: str(self.sequence), 11: order.cl_ord_id, 37: order_id, 17: f"E{self.sequence}",
                  150: exec_type, 39: status, 54: "1" if order.side == "buy" else "2", 38: f"{order.quantity}",
                  44: f"{order.price}", 14: f"{cum}", 6: f"{cost / cum if cum else 0.0}",
                  60: f"{1_700_000_000 + self.sequence}"}  # fmt: skip
        if last is not None:
            fields[32], fields[31] = f"{last[0]}", f"{last[1]}"
        if text is not None:
            fields[58] = text
        return encode(fields)


class ExecutionReportHandler:
    """ExecutionReport → order tracker event. ``60`` (TransactTime) is the venue's clock."""

    def __init__(self, tracker: OrderTracker) -> None:
        self.tracker = tracker

    def __call__(self, message: str) -> None:
        report = decode(message)
        if report.get(35) != "8":
            return
        cl, at = report[11], float(report[60])
        exec_type = report[150]
        if exec_type == "0":
            self.tracker.acked(cl, exchange_id=report[37], timestamp=at)
        elif exec_type == "F":
            self.tracker.fill(cl, float(report[32]), float(report[31]), trade_id=report[17], timestamp=at)
        elif exec_type in ("4", "C"):
            end = self.tracker.cancelled if exec_type == "4" else self.tracker.expired
            cum = float(report[14])
            end(cl, filled=cum, average=float(report[6]) if cum else None, timestamp=at)
        elif exec_type == "8":
            self.tracker.rejected(cl, report.get(58, "rejected"), timestamp=at)


def session(reports: list[str], rng: random.Random) -> list[str]:
    """What the session layer delivers: some reports resent (43=Y), some a little late."""
    out: list[str] = []
    for report in reports:
        out.append(report)
        if rng.random() < 0.2:
            out.append(report.replace(SOH + "34=", SOH + "43=Y" + SOH + "34=", 1))
    for _ in range(len(out) // 4):
        i = rng.randrange(len(out))
        j = min(len(out) - 1, i + rng.randint(1, 3))
        out[i], out[j] = out[j], out[i]
    return out


def run(telemetry: tradetel.Telemetry, *, orders: int = 200, seed: int = 3) -> Venue:
    """Send ``orders`` limit orders and feed every delivered report to the tracker; the venue keeps the truth."""
    venue, rng = Venue(seed), random.Random(seed + 1)
    handler = ExecutionReportHandler(telemetry.order_tracker)
    for n in range(orders):
        side = rng.choice(("buy", "sell"))
        quantity, price = rng.randint(1, 20) * 0.25, 100.0 + rng.randint(-40, 40) * 0.25
        cl = f"C{n:05d}"
        telemetry.order_tracker.open(cl, exchange=EXCHANGE, symbol="ES", side=side, amount=quantity, price=price,
                                     order_type="limit", intent="entry")  # fmt: skip
        for message in session(venue.new_order_single(cl, side, quantity, price), rng):
            handler(message)
    return venue


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    with tradetel.configure(service_name="fix-venue", exporters="none", env={}) as telemetry:
        venue = run(telemetry, orders=args.orders, seed=args.seed)
        metrics = Capture(telemetry)
        truth = {state: sum(1 for o in venue.orders if o.outcome == state) for state in ("filled", "cancelled")}
        print(f"orders          {metrics.value('orders.submitted'):.0f}")
        print(f"filled          {metrics.value('orders.filled'):.0f} (venue: {truth['filled']})")
        print(f"cancelled       {metrics.value('orders.cancelled'):.0f} (venue: {truth['cancelled']})")
        print(f"pending         {metrics.value('orders.pending'):.0f}")


if __name__ == "__main__":
    main()
