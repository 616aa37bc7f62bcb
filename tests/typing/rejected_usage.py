"""Calls that mypy --strict must reject: each line marked ``# rejected`` is a wrong argument or result type.

Checked by tests/typing/test_typing.py; it is never imported or run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tradetel.decorators import exchange_call, order_placement, strategy_cycle, timed


@order_placement(exchange="binance")
def place(symbol: str, side: str, amount: float) -> dict[str, Any]:
    return {}


@exchange_call(exchange="binance")
async def fetch_ticker(symbol: str) -> dict[str, float]:
    return {}


@timed("strategy.stage.duration")
def stream(n: int) -> Iterator[int]:
    yield n


class Bot:
    @classmethod
    @strategy_cycle(strategy="grid")
    def load(cls, path: str) -> Bot:
        return cls()


place("BTC/USDT", "buy", "one")  # rejected
place("BTC/USDT", side="buy")  # rejected
pending = fetch_ticker(42)  # rejected
items: list[int] = list(stream("3"))  # rejected
Bot.load(3.5)  # rejected
price: str = place("BTC/USDT", "buy", 1.0)  # rejected
