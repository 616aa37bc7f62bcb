"""An asyncio grid bot, instrumented from the outside: its class and its exchange are not edited.

The bot below is ordinary code that knows nothing about tradetel. ``run()``
retrofits it: ``instrument_ccxt`` wraps the (simulated, ccxt-shaped)
exchange, ``instrument_methods`` wraps the bot's cycle, stages and trade
exits. Everything is seeded, offline and bounded::

    python examples/asyncio_bot.py --cycles 20 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import tradetel
from tradetel.decorators import strategy_cycle, strategy_stage, trade_close
from tradetel.retrofit import instrument_ccxt, instrument_methods
from tradetel.testing import Capture

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


class InsufficientFunds(Exception):  # noqa: N818 - ccxt's name
    """Raised by the simulated exchange like ccxt's InsufficientFunds."""


class RequestTimeout(Exception):  # noqa: N818 - ccxt's name
    """Raised by the simulated exchange like ccxt's RequestTimeout."""


class SimulatedExchange:
    """An offline exchange with the shape of a ``ccxt.async_support`` exchange."""

    id = "simex"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.prices = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0, "SOL/USDT": 150.0}

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        if self.rng.random() < 0.05:
            raise RequestTimeout(f"simex GET /ticker/{symbol} timed out")
        price = self.prices[symbol] = self.prices[symbol] * (1 + self.rng.gauss(0, 0.002))
        return {"symbol": symbol, "bid": price * 0.9999, "ask": price * 1.0001, "last": price}

    async def create_order(
        self,
        symbol: str,
        type: str,  # noqa: A002 - ccxt's parameter name
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        await asyncio.sleep(0)
        if self.rng.random() < 0.1:
            raise InsufficientFunds("simex Account has insufficient balance for requested action")
        reference = price if price is not None else self.prices[symbol]
        worse = 1 + self.rng.uniform(0, 0.0008) if side == "buy" else 1 - self.rng.uniform(0, 0.0008)
        filled = amount if self.rng.random() < 0.8 else amount / 2
        return {
            "id": str(self.rng.getrandbits(32)),
            "symbol": symbol,
            "type": type,
            "side": side,
            "amount": amount,
            "filled": filled,
            "average": reference * worse,
            "price": price,
            "status": "closed" if filled == amount else "open",
        }

    async def cancel_order(self, id: str, symbol: str | None = None) -> dict[str, Any]:  # noqa: A002
        await asyncio.sleep(0)
        return {"id": id, "symbol": symbol, "status": "canceled"}


@dataclass
class Tally:
    """What the bot itself knows happened: the ground truth the metrics must match."""

    cycles: int = 0
    ticker_timeouts: int = 0
    orders: int = 0
    fills: int = 0
    partial: int = 0
    rejected: int = 0
    cancels: int = 0
    r_multiples: list[float] = field(default_factory=list)


class GridBot:
    """The bot as its author wrote it: no telemetry anywhere."""

    def __init__(self, exchange: SimulatedExchange, rng: random.Random) -> None:
        self.exchange = exchange
        self.rng = rng
        self.tally = Tally()

    async def run_cycle(self) -> None:
        self.tally.cycles += 1
        for symbol in SYMBOLS:
            ticker = await self.fetch(symbol)
            if ticker is not None and self.evaluate(ticker):
                await self.trade(symbol, ticker)

    async def fetch(self, symbol: str) -> dict[str, Any] | None:
        try:
            return await self.exchange.fetch_ticker(symbol)
        except RequestTimeout:
            self.tally.ticker_timeouts += 1
            return None

    def evaluate(self, ticker: dict[str, Any]) -> bool:
        return self.rng.random() < 0.5

    async def trade(self, symbol: str, ticker: dict[str, Any]) -> None:
        side = self.rng.choice(("buy", "sell"))
        self.tally.orders += 1
        try:
            order = await self.exchange.create_order(symbol, "limit", side, 0.1, ticker["last"])
        except InsufficientFunds:
            self.tally.rejected += 1
            return
        if order["status"] == "closed":
            self.tally.fills += 1
            self.close_trade(symbol, round(self.rng.uniform(-1.5, 3.0), 2))
        else:
            self.tally.partial += 1
            self.tally.cancels += 1
            await self.exchange.cancel_order(order["id"], symbol)

    def close_trade(self, symbol: str, r: float) -> float:
        self.tally.r_multiples.append(r)
        return r


async def run_bot(cycles: int, seed: int, telemetry: tradetel.Telemetry) -> Tally:
    """Build the bot, retrofit it with tradetel, run ``cycles`` cycles and return its own tally."""
    rng = random.Random(seed)
    exchange = SimulatedExchange(rng)
    bot = GridBot(exchange, rng)
    exchange_hooks = instrument_ccxt(exchange, telemetry=telemetry)
    bot_hooks = instrument_methods(
        bot,
        {
            "run_cycle": strategy_cycle(strategy="grid", telemetry=telemetry),
            "evaluate": strategy_stage("signals", strategy="grid", telemetry=telemetry),
            "trade": strategy_stage("execution", strategy="grid", telemetry=telemetry),
            "close_trade": trade_close(
                strategy="grid", r_multiple="r", from_args={"symbol": "symbol"}, telemetry=telemetry
            ),
        },
    )
    try:
        for _ in range(cycles):
            await bot.run_cycle()
    finally:
        bot_hooks.undo()
        exchange_hooks.undo()
    return bot.tally


def run(telemetry: tradetel.Telemetry, *, cycles: int = 20, seed: int = 7) -> Tally:
    """Run the bot to completion in a fresh event loop."""
    return asyncio.run(run_bot(cycles, seed, telemetry))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tradetel.configure(service_name="asyncio-grid-bot", exporters="none", env={}) as telemetry:
        tally = run(telemetry, cycles=args.cycles, seed=args.seed)
        metrics = Capture(telemetry)
        print(f"cycles            {metrics.value('strategy.cycles'):.0f} (bot counted {tally.cycles})")
        print(f"orders submitted  {metrics.value('orders.submitted'):.0f} (bot counted {tally.orders})")
        print(f"orders filled     {metrics.value('orders.filled'):.0f} (bot counted {tally.fills})")
        print(f"orders rejected   {metrics.value('orders.rejected'):.0f} (bot counted {tally.rejected})")
        print(f"ticker timeouts   {metrics.value('exchange.errors', error_type='timeout'):.0f}")
        r = metrics.histogram("trades.r_multiple")
        print(f"closed trades     {r.count} with total R {r.sum:+.2f}")


if __name__ == "__main__":
    main()
