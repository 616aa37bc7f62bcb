"""A threaded bot decorated at import time, recording into the process-wide default telemetry.

The decorators below are applied when the module is imported, before any
telemetry exists; they look up :func:`tradetel.get_default` at each call, so
``tradetel.set_default(tel)`` in ``main()`` is all the wiring there is. One
worker thread per symbol; every thread has its own seeded random source, so
the counts do not depend on how the threads interleave::

    python examples/threaded_bot.py --ticks 50 --seed 3
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import tradetel
from tradetel.decorators import count_exceptions, exchange_call, in_flight, order_placement, strategy_cycle
from tradetel.testing import Capture

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT")
EXCHANGE = "simex"


class ExchangeDown(Exception):  # noqa: N818 - mirrors an exchange library's name
    """The simulated venue answered 503."""


@exchange_call(exchange=EXCHANGE)
def fetch_mid(rng: random.Random, symbol: str, last: float) -> float:
    """Fetch the mid price; fails now and then like a real REST endpoint."""
    time.sleep(0.0002)
    if rng.random() < 0.04:
        raise ExchangeDown("503 Service Unavailable")
    return last * (1 + rng.gauss(0, 0.001))


@in_flight("orders.pending", exchange=EXCHANGE, from_args={"symbol": "symbol"})
@order_placement(exchange=EXCHANGE, reference_price="mid")
def place_market_order(rng: random.Random, symbol: str, side: str, amount: float, mid: float) -> dict[str, Any]:
    """Send a market order and return it as a ccxt unified order."""
    time.sleep(0.0002)
    if rng.random() < 0.05:
        raise ValueError("order size below min_qty")
    slip = rng.uniform(0, 0.0005)
    average = mid * (1 + slip) if side == "buy" else mid * (1 - slip)
    return {"symbol": symbol, "side": side, "type": "market", "amount": amount, "filled": amount, "average": average}


@count_exceptions("exchange.errors", exchange=EXCHANGE, endpoint="tick")
@strategy_cycle(strategy="momentum", status=lambda traded: "ok" if traded else "skipped")
def tick(rng: random.Random, symbol: str, state: dict[str, float]) -> bool:
    """One strategy cycle for one symbol: returns whether it traded."""
    try:
        mid = fetch_mid(rng, symbol, state["last"])
    except ExchangeDown:
        return False
    moved = mid / state["last"] - 1
    state["last"] = mid
    if abs(moved) < 0.0008:
        return False
    try:
        place_market_order(rng, symbol, "buy" if moved > 0 else "sell", 1.0, mid)
    except ValueError:
        return True
    return True


@dataclass
class Tally:
    """How many cycles traded and were skipped, counted by the workers themselves."""

    traded: int = 0
    skipped: int = 0


def worker(symbol: str, seed: int, ticks: int, tally: Tally, lock: threading.Lock) -> None:
    rng = random.Random(f"{seed}:{symbol}")
    state = {"last": 100.0}
    for _ in range(ticks):
        traded = tick(rng, symbol, state)
        with lock:
            if traded:
                tally.traded += 1
            else:
                tally.skipped += 1


def run(telemetry: tradetel.Telemetry, *, ticks: int = 50, seed: int = 3) -> Tally:
    """Run one worker thread per symbol with ``telemetry`` as the process default; restore the previous default."""
    previous = tradetel.get_default()
    tradetel.set_default(telemetry)
    tally, lock = Tally(), threading.Lock()
    try:
        with ThreadPoolExecutor(max_workers=len(SYMBOLS), thread_name_prefix="bot") as pool:
            futures = [pool.submit(worker, symbol, seed, ticks, tally, lock) for symbol in SYMBOLS]
            for future in futures:
                future.result(timeout=60)
    finally:
        tradetel.set_default(previous)
    return tally


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    with tradetel.configure(service_name="threaded-bot", exporters="none", env={}) as telemetry:
        tally = run(telemetry, ticks=args.ticks, seed=args.seed)
        metrics = Capture(telemetry)
        print(
            f"cycles ok/skipped   {metrics.value('strategy.cycles', status='ok'):.0f}/"
            f"{metrics.value('strategy.cycles', status='skipped'):.0f} (bot: {tally.traded}/{tally.skipped})"
        )
        print(f"orders submitted    {metrics.value('orders.submitted'):.0f}")
        print(f"orders rejected     {metrics.value('orders.rejected'):.0f}")
        print(f"exchange errors     {metrics.value('exchange.errors'):.0f}")
        slippage = metrics.histogram("orders.slippage")
        print(f"mean slippage (bp)  {slippage.sum / max(slippage.count, 1):.2f} over {slippage.count} fills")
        print(f"orders in flight    {metrics.value('orders.pending'):.0f}")


if __name__ == "__main__":
    main()
