"""A backtest loop instrumented with decorators: every bar is a strategy cycle, every exit a closed trade.

A seeded random walk feeds a moving-average crossover. Entries go through a
simulated fill decorated with ``order_placement`` (slippage against the bar's
mid price), exits through ``close_trade`` decorated with ``trade_close``
(R-multiple and PnL read from the returned trade). The same decorators would
instrument the live bot; in a backtest they give the R distribution, win
rate and slippage as metrics::

    python examples/backtest.py --bars 500 --seed 42
"""

from __future__ import annotations

import argparse
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import tradetel
from tradetel.decorators import order_placement, strategy_cycle, strategy_stage, trade_close
from tradetel.testing import Capture

SYMBOL = "EUR/USD"
RISK_FRACTION = 0.004  # stop distance as a share of the entry price: 1 R


@dataclass
class Position:
    side: str
    entry: float
    stop_distance: float
    size: float


@dataclass
class Trade:
    """A closed trade, as the backtest reports it."""

    side: str
    r_multiple: float
    pnl: float


@dataclass
class Backtest:
    """State of one run; ``trades`` is the ground truth the metrics must match."""

    rng: random.Random
    telemetry: tradetel.Telemetry
    fast: deque[float] = field(default_factory=lambda: deque(maxlen=5))
    slow: deque[float] = field(default_factory=lambda: deque(maxlen=20))
    position: Position | None = None
    trades: list[Trade] = field(default_factory=list)
    entries: int = 0

    def __post_init__(self) -> None:
        tel = self.telemetry
        # Decorating bound methods here keeps the class free of tradetel and the telemetry explicit.
        self.on_bar = strategy_cycle(strategy="ma_cross", status=_status, telemetry=tel)(self.on_bar)  # type: ignore[method-assign]
        self.signal = strategy_stage("signals", strategy="ma_cross", telemetry=tel)(self.signal)  # type: ignore[method-assign]
        self.fill = order_placement(exchange="backtest", reference_price="mid", telemetry=tel)(self.fill)  # type: ignore[method-assign]
        self.close_trade = trade_close(  # type: ignore[method-assign]
            strategy="ma_cross", from_args={"symbol": "symbol"}, breakeven=0.05, telemetry=tel
        )(self.close_trade)

    def signal(self, price: float) -> str | None:
        self.fast.append(price)
        self.slow.append(price)
        if len(self.slow) < self.slow.maxlen:  # type: ignore[operator]
            return None
        fast, slow = sum(self.fast) / len(self.fast), sum(self.slow) / len(self.slow)
        return "buy" if fast > slow * 1.0005 else "sell" if fast < slow * 0.9995 else None

    def fill(self, symbol: str, side: str, amount: float, mid: float) -> dict[str, Any]:
        slip = self.rng.uniform(-0.00005, 0.00015)
        average = mid * (1 + slip) if side == "buy" else mid * (1 - slip)
        return {
            "symbol": symbol,
            "side": side,
            "type": "market",
            "amount": amount,
            "filled": amount,
            "average": average,
        }

    def close_trade(self, symbol: str, position: Position, exit_price: float) -> Trade:
        direction = 1 if position.side == "buy" else -1
        move = (exit_price - position.entry) * direction
        trade = Trade(position.side, round(move / position.stop_distance, 4), round(move * position.size, 2))
        self.trades.append(trade)
        return trade

    def on_bar(self, price: float) -> str:
        """One cycle: manage the open position, then look for an entry. Returns what happened."""
        position = self.position
        if position is not None:
            direction = 1 if position.side == "buy" else -1
            move = (price - position.entry) * direction
            if move <= -position.stop_distance or move >= 2 * position.stop_distance:
                self.close_trade(SYMBOL, position, price)
                self.position = None
                return "exit"
            return "hold"
        side = self.signal(price)
        if side is None:
            return "flat"
        order = self.fill(SYMBOL, side, 10_000.0, price)
        self.entries += 1
        self.position = Position(side, order["average"], order["average"] * RISK_FRACTION, order["amount"])
        return "entry"


def _status(action: str) -> str:
    return "skipped" if action in ("flat", "hold") else "ok"


def prices(bars: int, seed: int) -> list[float]:
    """A seeded random walk around 1.10 with slowly changing drift."""
    rng = random.Random(seed)
    price, drift, out = 1.10, 0.0, []
    for _ in range(bars):
        drift = 0.98 * drift + rng.gauss(0, 0.00004)
        price *= 1 + drift + rng.gauss(0, 0.0006)
        out.append(price)
    return out


def run(telemetry: tradetel.Telemetry, *, bars: int = 500, seed: int = 42) -> Backtest:
    """Run the backtest over ``bars`` bars and return its state (trades, entries)."""
    backtest = Backtest(random.Random(seed + 1), telemetry)
    for price in prices(bars, seed):
        backtest.on_bar(price)
    return backtest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    with tradetel.configure(service_name="backtest", exporters="none", env={}) as telemetry:
        backtest = run(telemetry, bars=args.bars, seed=args.seed)
        metrics = Capture(telemetry)
        r = metrics.histogram("trades.r_multiple")
        wins = metrics.value("trades.closed", outcome="win")
        print(f"bars (cycles)   {metrics.value('strategy.cycles'):.0f}")
        print(f"entries         {metrics.value('orders.filled'):.0f} (backtest counted {backtest.entries})")
        print(f"closed trades   {r.count} (backtest counted {len(backtest.trades)})")
        print(f"win rate        {wins / max(r.count, 1):.0%}")
        print(f"total R         {r.sum:+.2f} (backtest: {sum(t.r_multiple for t in backtest.trades):+.2f})")
        print(f"realised PnL    {metrics.value('trades.realized_pnl'):+.2f}")
        slippage = metrics.histogram("orders.slippage")
        print(f"mean slippage   {slippage.sum / max(slippage.count, 1):+.2f} bp")


if __name__ == "__main__":
    main()
