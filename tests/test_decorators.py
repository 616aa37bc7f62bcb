"""Every decorator on every kind of callable: recorded values, return values, exceptions and signatures.

The matrix crosses the eleven decorators with ten ways of defining the
decorated callable (function, coroutine, generator, async generator, method,
async method, classmethod and staticmethod with the decorator under them, and
the decorator applied over ``@classmethod``/``@staticmethod``). Durations are
made exact by replacing the decorators' ``perf_counter`` with a clock that
advances 0.5 s per reading.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import tradetel.decorators._framework as decorators_module
from tradetel.decorators import (
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
from tradetel.telemetry import Telemetry
from tradetel.testing import Capture

STEP = 0.5
ORDER: dict[str, Any] = {
    "status": "closed",
    "filled": 2.0,
    "amount": 2.0,
    "average": 101.0,
    "price": 100.0,
    "side": "buy",
    "symbol": "BTC/USDT",
    "type": "limit",
    "r_multiple": 2.0,
    "pnl": 50.0,
}
ARGS = ("BTC/USDT", "buy", 2.0, 100.0)
SYMBOL = {"symbol": "symbol"}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace the decorators' perf_counter by a clock advancing STEP seconds per reading."""
    now = [0.0]

    def fake() -> float:
        now[0] += STEP
        return now[0]

    monkeypatch.setattr(decorators_module, "perf_counter", fake)
    return now


# --- the ten kinds of callable ----------------------------------------------------------------------

KINDS = (
    "function",
    "coroutine",
    "generator",
    "async_generator",
    "method",
    "async_method",
    "classmethod",
    "staticmethod",
    "classmethod_outer",
    "staticmethod_outer",
)


def drain(generator: Iterator[Any]) -> Any:
    """Iterate a generator to the end and return its return value."""
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


async def adrain(generator: AsyncIterator[Any]) -> None:
    async for _ in generator:
        pass


Decorate = Callable[[Any], Any]


def build(kind: str, decorate: Decorate, behaviour: Callable[[], Any]) -> tuple[Callable[[], Any], bool]:
    """The decorated callable of ``kind`` and an invoker; the flag says whether a return value reaches the decorator."""
    if kind == "function":

        @decorate
        def place(symbol: str, side: str, amount: float, price: float) -> Any:
            """Place an order."""
            return behaviour()

        return lambda: place(*ARGS), True
    if kind == "coroutine":

        @decorate
        async def place_async(symbol: str, side: str, amount: float, price: float) -> Any:
            await asyncio.sleep(0)
            return behaviour()

        return lambda: asyncio.run(place_async(*ARGS)), True
    if kind == "generator":

        @decorate
        def place_gen(symbol: str, side: str, amount: float, price: float) -> Iterator[str]:
            yield "tick"
            return behaviour()  # type: ignore[no-any-return]

        return lambda: drain(place_gen(*ARGS)), True
    if kind == "async_generator":

        @decorate
        async def place_agen(symbol: str, side: str, amount: float, price: float) -> AsyncIterator[str]:
            yield "tick"
            behaviour()

        return lambda: asyncio.run(adrain(place_agen(*ARGS))), False
    if kind == "method":

        class Bot:
            @decorate
            def place(self, symbol: str, side: str, amount: float, price: float) -> Any:
                return behaviour()

        return lambda: Bot().place(*ARGS), True
    if kind == "async_method":

        class AsyncBot:
            @decorate
            async def place(self, symbol: str, side: str, amount: float, price: float) -> Any:
                return behaviour()

        return lambda: asyncio.run(AsyncBot().place(*ARGS)), True
    if kind == "classmethod":

        class ClassBot:
            @classmethod
            @decorate
            def place(cls, symbol: str, side: str, amount: float, price: float) -> Any:
                assert cls is ClassBot
                return behaviour()

        return lambda: ClassBot.place(*ARGS), True
    if kind == "staticmethod":

        class StaticBot:
            @staticmethod
            @decorate
            def place(symbol: str, side: str, amount: float, price: float) -> Any:
                return behaviour()

        return lambda: StaticBot().place(*ARGS), True
    if kind == "classmethod_outer":

        class OuterClassBot:
            @decorate
            @classmethod
            def place(cls, symbol: str, side: str, amount: float, price: float) -> Any:
                assert cls is OuterClassBot
                return behaviour()

        return lambda: OuterClassBot().place(*ARGS), True
    if kind == "staticmethod_outer":

        class OuterStaticBot:
            @decorate
            @staticmethod
            def place(symbol: str, side: str, amount: float, price: float) -> Any:
                return behaviour()

        return lambda: OuterStaticBot.place(*ARGS), True
    raise AssertionError(kind)


# --- the eleven decorators and what each must record -------------------------------------------------


@dataclass
class Case:
    """A decorator under test and the values it must have recorded after one call."""

    make: Callable[[Telemetry], Decorate]
    ok: Callable[[Capture, bool], None]
    error: Callable[[Capture], None]
    during: Callable[[Capture], float] | None = None
    seen: list[float] = field(default_factory=list)


def _hist(cap: Capture, name: str, **attributes: object) -> tuple[int, float]:
    value = cap.histogram(name, **attributes)
    return value.count, value.sum


def _timed_ok(cap: Capture, returned: bool) -> None:
    assert _hist(cap, "orders.latency", exchange="binance", stage="ack") == (1, STEP)


def _counted_ok(cap: Capture, returned: bool) -> None:
    assert cap.value("orders.filled", exchange="binance", symbol="BTC/USDT") == 1


def _in_flight_ok(cap: Capture, returned: bool) -> None:
    assert cap.series("orders.pending") == [({"exchange": "binance", "symbol": "BTC/USDT"}, 0)]


def _count_exceptions_ok(cap: Capture, returned: bool) -> None:
    assert cap.value("exchange.errors") == 0


def _count_exceptions_error(cap: Capture) -> None:
    assert cap.series("exchange.errors") == [
        ({"exchange": "binance", "endpoint": "create_order", "error_type": "timeout"}, 1)
    ]


def _placement_ok(cap: Capture, returned: bool) -> None:
    assert cap.value("orders.submitted", exchange="binance", symbol="BTC/USDT", side="buy") == 1
    assert _hist(cap, "orders.latency", exchange="binance", symbol="BTC/USDT", stage="ack") == (1, STEP)
    if returned:
        assert cap.value("orders.filled", exchange="binance", symbol="BTC/USDT", side="buy", order_type="limit") == 1
        assert _hist(cap, "orders.notional", symbol="BTC/USDT", side="buy") == (1, 202.0)
        count, slippage = _hist(cap, "orders.slippage", symbol="BTC/USDT", side="buy")
        assert count == 1
        assert slippage == pytest.approx(100.0)  # bought at 101 against 100: 100 bp worse
    else:  # an async generator returns no order: its outcome is dropped and counted
        assert cap.value("orders.filled") == 0
        assert cap.histogram("orders.notional").count == 0
        assert cap.dropped("unreadable_order") == 1
    assert cap.value("orders.rejected") == 0


def _placement_error(cap: Capture) -> None:
    assert cap.value("orders.submitted", symbol="BTC/USDT") == 1
    assert cap.value("orders.rejected", exchange="binance", symbol="BTC/USDT", side="buy", reason="timeout") == 1
    assert cap.histogram("orders.latency").count == 0
    assert cap.value("orders.filled") == 0


def _cancel_ok(cap: Capture, returned: bool) -> None:
    attributes = {"exchange": "binance", "symbol": "BTC/USDT", "side": "buy"}
    if returned:
        attributes["order_type"] = "limit"
    assert cap.series("orders.cancelled") == [(attributes, 1)]
    assert _hist(cap, "orders.latency", stage="cancel") == (1, STEP)


def _cancel_error(cap: Capture) -> None:
    assert cap.value("orders.cancelled") == 0
    assert cap.histogram("orders.latency").count == 0


def _exchange_ok(cap: Capture, returned: bool) -> None:
    assert cap.value("exchange.requests", status="ok", exchange="binance") == 1
    assert next(a["endpoint"] for a, _ in cap.series("exchange.requests")).startswith("place")
    assert cap.histogram("exchange.request.duration", exchange="binance").sum == STEP
    assert cap.series("exchange.error_streak") == [({"exchange": "binance"}, 0)]
    assert cap.value("exchange.errors") == 0


def _exchange_error(cap: Capture) -> None:
    assert cap.value("exchange.requests", status="error") == 1
    assert cap.value("exchange.requests", status="ok") == 0
    assert cap.value("exchange.errors", exchange="binance", error_type="timeout") == 1
    assert cap.series("exchange.error_streak") == [({"exchange": "binance"}, 1)]
    assert cap.histogram("exchange.request.duration").count == 1


def _trade_ok(cap: Capture, returned: bool) -> None:
    if returned:
        assert cap.series("trades.closed") == [({"symbol": "BTC/USDT", "strategy": "breakout", "outcome": "win"}, 1)]
        assert _hist(cap, "trades.r_multiple", symbol="BTC/USDT", strategy="breakout") == (1, 2.0)
        assert cap.value("trades.realized_pnl", symbol="BTC/USDT") == 50.0
    else:  # an async generator returns nothing: no trade to read, so nothing partial is recorded
        assert cap.series("trades.closed") == []
        assert cap.histogram("trades.r_multiple").count == 0
        assert cap.dropped("unreadable_trade") == 1


def _trade_error(cap: Capture) -> None:
    assert cap.value("trades.closed") == 0
    assert cap.histogram("trades.r_multiple").count == 0


def _cycle_ok(cap: Capture, returned: bool) -> None:
    assert cap.series("strategy.cycles") == [({"strategy": "grid", "status": "ok"}, 1)]
    assert _hist(cap, "strategy.cycle.duration", strategy="grid") == (1, STEP)


def _cycle_error(cap: Capture) -> None:
    assert cap.series("strategy.cycles") == [({"strategy": "grid", "status": "timeout"}, 1)]
    assert _hist(cap, "strategy.cycle.duration", strategy="grid") == (1, STEP)


def _stage_ok(cap: Capture, returned: bool) -> None:
    assert _hist(cap, "strategy.stage.duration", strategy="grid", stage="execution") == (1, STEP)


def _signal_ok(cap: Capture, returned: bool) -> None:
    assert cap.series("signals.received") == [({"source": "tradingview", "symbol": "BTC/USDT", "side": "buy"}, 1)]
    assert _hist(cap, "signals.processing.duration", source="tradingview", status="ok") == (1, STEP)
    assert cap.value("signals.in_flight", source="tradingview") == 0
    assert cap.value("signals.rejected") == 0


def _signal_error(cap: Capture) -> None:
    assert cap.value("signals.received", source="tradingview") == 1
    assert _hist(cap, "signals.processing.duration", status="error") == (1, STEP)
    assert cap.value("signals.in_flight") == 0
    assert cap.value("signals.rejected") == 0


def _pending(cap: Capture) -> float:
    return cap.value("orders.pending", exchange="binance", symbol="BTC/USDT")


def _signals_in_flight(cap: Capture) -> float:
    return cap.value("signals.in_flight", source="tradingview")


CASES: dict[str, Callable[[], Case]] = {
    "timed": lambda: Case(
        lambda tel: timed("orders.latency", telemetry=tel, exchange="binance", stage="ack"),
        _timed_ok,
        lambda cap: _timed_ok(cap, False),
    ),
    "counted": lambda: Case(
        lambda tel: counted("orders.filled", telemetry=tel, exchange="binance", from_args=SYMBOL),
        _counted_ok,
        lambda cap: _counted_ok(cap, False),
    ),
    "in_flight": lambda: Case(
        lambda tel: in_flight("orders.pending", telemetry=tel, exchange="binance", from_args=SYMBOL),
        _in_flight_ok,
        lambda cap: _in_flight_ok(cap, False),
        during=_pending,
    ),
    "count_exceptions": lambda: Case(
        lambda tel: count_exceptions("exchange.errors", telemetry=tel, exchange="binance", endpoint="create_order"),
        _count_exceptions_ok,
        _count_exceptions_error,
    ),
    "order_placement": lambda: Case(
        lambda tel: order_placement(telemetry=tel, exchange="binance", reference_price="price"),
        _placement_ok,
        _placement_error,
    ),
    "order_cancel": lambda: Case(
        lambda tel: order_cancel(telemetry=tel, exchange="binance"), _cancel_ok, _cancel_error
    ),
    "exchange_call": lambda: Case(
        lambda tel: exchange_call(telemetry=tel, exchange="binance"), _exchange_ok, _exchange_error
    ),
    "trade_close": lambda: Case(
        lambda tel: trade_close(telemetry=tel, strategy="breakout", from_args=SYMBOL), _trade_ok, _trade_error
    ),
    "strategy_cycle": lambda: Case(lambda tel: strategy_cycle(telemetry=tel, strategy="grid"), _cycle_ok, _cycle_error),
    "strategy_stage": lambda: Case(
        lambda tel: strategy_stage("execution", telemetry=tel, strategy="grid"),
        _stage_ok,
        lambda cap: _stage_ok(cap, False),
    ),
    "signal_handler": lambda: Case(
        lambda tel: signal_handler(telemetry=tel, source="tradingview", from_args={"symbol": "symbol", "side": "side"}),
        _signal_ok,
        _signal_error,
        during=_signals_in_flight,
    ),
}


def _behaviour(case: Case, cap: Capture, outcome: BaseException | None) -> Callable[[], Any]:
    def behave() -> Any:
        if case.during is not None:
            case.seen.append(case.during(cap))
        if outcome is not None:
            raise outcome
        return dict(ORDER)

    return behave


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_records_on_return(name: str, kind: str, cap: Capture, clock: list[float]) -> None:
    """A call that returns passes its value through unchanged and records the decorator's values."""
    case = CASES[name]()
    invoke, returned = build(kind, case.make(cap.telemetry), _behaviour(case, cap, None))
    result = invoke()
    if returned and kind != "generator":
        assert result == ORDER
    if kind == "generator":
        assert result == ORDER  # the generator's return value survives the wrapper
    case.ok(cap, returned)
    if case.during is not None:
        assert case.seen == [1]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_records_on_exception(name: str, kind: str, cap: Capture, clock: list[float]) -> None:
    """A call that raises re-raises the very same exception object and records the failure."""
    case = CASES[name]()
    failure = TimeoutError("exchange timed out")
    invoke, _ = build(kind, case.make(cap.telemetry), _behaviour(case, cap, failure))
    with pytest.raises(TimeoutError) as raised:
        invoke()
    assert raised.value is failure
    case.error(cap)
    if case.during is not None:
        assert case.seen == [1]


def _originals() -> dict[str, Callable[..., Any]]:
    def function(symbol: str, side: str = "buy", *, amount: float = 1.0, price: float = 0.0) -> dict[str, Any]:
        """Place an order."""
        return {}

    async def coroutine(symbol: str, side: str = "buy", *, amount: float = 1.0, price: float = 0.0) -> dict[str, Any]:
        """Place an order asynchronously."""
        return {}

    def generator(symbol: str, side: str = "buy", *, amount: float = 1.0, price: float = 0.0) -> Iterator[int]:
        """Stream fills."""
        yield 1

    async def async_generator(
        symbol: str, side: str = "buy", *, amount: float = 1.0, price: float = 0.0
    ) -> AsyncIterator[int]:
        """Stream fills asynchronously."""
        yield 1

    return {"function": function, "coroutine": coroutine, "generator": generator, "async_generator": async_generator}


@pytest.mark.parametrize("original_kind", sorted(_originals()))
@pytest.mark.parametrize("name", sorted(CASES))
def test_wrapper_keeps_identity(name: str, original_kind: str, cap: Capture) -> None:
    """The wrapper keeps the name, docstring, signature and sync/async/generator nature of the original."""
    original = _originals()[original_kind]
    wrapped = CASES[name]().make(cap.telemetry)(original)
    assert wrapped.__name__ == original.__name__
    assert wrapped.__qualname__ == original.__qualname__
    assert wrapped.__doc__ == original.__doc__
    assert wrapped.__wrapped__ is original
    assert inspect.signature(wrapped) == inspect.signature(original)
    for predicate in (inspect.iscoroutinefunction, inspect.isgeneratorfunction, inspect.isasyncgenfunction):
        assert predicate(wrapped) == predicate(original)


@pytest.mark.parametrize("name", sorted(CASES))
def test_descriptor_kind_is_kept(name: str, cap: Capture) -> None:
    """Applied over @classmethod or @staticmethod, a decorator returns the same kind of descriptor."""
    decorate = CASES[name]().make(cap.telemetry)

    class Holder:
        @decorate
        @classmethod
        def make(cls, symbol: str, side: str, amount: float, price: float) -> type:
            return cls

        @decorate
        @staticmethod
        def pure(symbol: str, side: str, amount: float, price: float) -> float:
            return amount + 1

    assert isinstance(Holder.__dict__["make"], classmethod)
    assert isinstance(Holder.__dict__["pure"], staticmethod)
    assert Holder.make(*ARGS) is Holder
    assert Holder().pure(*ARGS) == 3.0
