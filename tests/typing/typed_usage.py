"""Decorated callables keep their static types: mypy --strict must accept this module without a single error.

Checked by tests/typing/test_typing.py; ``assert_type`` fails the check if a
decorator widened a parameter or return type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, assert_type

from tradetel import Telemetry
from tradetel.decorators import (
    Call,
    count_exceptions,
    counted,
    exchange_call,
    in_flight,
    order_cancel,
    order_placement,
    signal_handler,
    strategy_cycle,
    strategy_stage,
    timed,
    trade_close,
)
from tradetel.retrofit import Instrumented, instrument_ccxt, instrument_methods


@order_placement(exchange="binance", reference_price="price")
def place(symbol: str, side: str, amount: float, price: float | None = None) -> dict[str, Any]:
    return {"symbol": symbol, "side": side, "amount": amount}


@exchange_call(exchange="binance")
async def fetch_ticker(symbol: str, *, depth: int = 5) -> dict[str, float]:
    return {"bid": 1.0}


@timed("strategy.stage.duration", stage="stream")
def stream(n: int) -> Iterator[int]:
    yield from range(n)


@signal_handler(source="tradingview")
async def signals(limit: int) -> AsyncIterator[str]:
    yield "entry"


@trade_close(strategy="grid", r_multiple="r")
def close(symbol: str, r: float) -> None:
    pass


class Bot:
    @strategy_cycle(strategy="grid")
    def cycle(self, bar: int) -> bool:
        return bar > 0

    @classmethod
    @strategy_stage("load", strategy="grid")
    def load(cls, path: str) -> Bot:
        return cls()

    @counted("orders.filled")
    @classmethod
    def from_fill(cls, fill_id: int) -> Bot:
        return cls()

    @staticmethod
    @in_flight("orders.pending")
    def spread(bid: float, ask: float) -> float:
        return ask - bid

    @count_exceptions("exchange.errors")
    @staticmethod
    def parse(raw: bytes) -> str:
        return raw.decode()


@order_cancel(exchange="binance")
def cancel(order_id: str, symbol: str | None = None) -> dict[str, Any]:
    return {}


def uses(tel: Telemetry, exchange: object) -> None:
    assert_type(place("BTC/USDT", "buy", 1.0), dict[str, Any])
    as_callable: Callable[[str, str, float, float | None], dict[str, Any]] = place
    assert_type(as_callable, Callable[[str, str, float, float | None], dict[str, Any]])
    assert_type(stream(3), Iterator[int])
    assert_type(signals(2), AsyncIterator[str])
    assert_type(close("BTC/USDT", 1.5), None)
    assert_type(Bot().cycle(3), bool)
    assert_type(Bot.load("state.json"), Bot)
    assert_type(Bot.from_fill(7), Bot)
    assert_type(Bot.spread(1.0, 1.5), float)
    assert_type(Bot.parse(b"x"), str)
    assert_type(cancel("1"), dict[str, Any])
    with timed("orders.latency", telemetry=tel, stage="ack") as call:
        assert_type(call, Call)
        call.set(exchange="binance")
    handle = instrument_methods(Bot, {"cycle": strategy_cycle(strategy="grid")})
    assert_type(handle, Instrumented)
    assert_type(instrument_ccxt(exchange, telemetry=tel), Instrumented)


async def uses_async() -> None:
    assert_type(await fetch_ticker("BTC/USDT", depth=10), dict[str, float])
    async for item in signals(2):
        assert_type(item, str)
    async with signal_handler(source="tradingview") as call:
        call.reject("stale")
