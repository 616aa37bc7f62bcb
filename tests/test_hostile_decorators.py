"""Hostile results and exceptions through every decorator (hypothesis).

Every decorator wraps sync functions, coroutines and generators that return hostile objects
(ccxt-order-like dicts with wrong types, objects whose attribute access raises, lazy numbers) or raise
hostile exceptions (``__str__``, ``__repr__`` and ``args`` raising). In the default mode the call's own
result or exception always comes back unchanged and nothing else is raised; in strict mode the only
other error is a typed :class:`~tradetel.MeasurementError` after a call that returned. Every measurement
a decorator attempts is either recorded or counted as dropped, never lost in the decorators' last-resort
error handler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tradetel
from tradetel import MeasurementError
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
from tradetel.testing import Capture, capture

# --- hostile values ---------------------------------------------------------------------------------------


class LazyPrice(float):
    """A price whose conversion raises."""

    def __float__(self) -> float:
        raise RuntimeError("price feed disconnected")


class Unprintable:
    """Nothing about it can be rendered."""

    def __str__(self) -> str:
        raise RuntimeError("no text")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class BadBool:
    """Truth, equality and hashing raise."""

    def __bool__(self) -> bool:
        raise RuntimeError("no truth")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no equality")

    def __hash__(self) -> int:
        raise RuntimeError("no hash")


class Exploding:
    """Every attribute access raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


class ExplodingMapping(Mapping[str, Any]):
    """A mapping whose every lookup raises."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("no item")

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("no get")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no iteration")

    def __len__(self) -> int:
        return 1


class BadClass:
    """An object whose ``__class__`` raises, so that even ``isinstance`` fails on it."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no class")


class RequestTimeout(Exception):  # noqa: N818 - named like ccxt's exception
    """An exception whose message, repr and args cannot be read."""

    def __str__(self) -> str:
        raise RuntimeError("no message")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    @property
    def args(self) -> tuple[Any, ...]:  # type: ignore[override]
        raise RuntimeError("no args")


ORDER = {
    "symbol": "BTC/USDT",
    "side": "buy",
    "type": "limit",
    "status": "closed",
    "amount": 2.0,
    "filled": 2.0,
    "average": 101.0,
    "price": 100.0,
}
# Hypothesis draws names (its reports print them); the hostile objects are built from them per call.
FIELD_VALUES: dict[str, Callable[[], Any]] = {
    "lazy price": lambda: LazyPrice(1.0),
    "text": lambda: "lots",
    "nan": lambda: float("nan"),
    "list": lambda: [1],
    "bool": lambda: True,
    "unprintable": Unprintable,
    "bad bool": BadBool,
    "signalling nan": lambda: Decimal("sNaN"),
    "huge int": lambda: 10**400,
    "raising __class__": BadClass,
}
OTHER_RESULTS: dict[str, Callable[[], Any]] = {
    "order": lambda: dict(ORDER),
    "none": lambda: None,
    "exploding object": Exploding,
    "exploding mapping": ExplodingMapping,
    "lazy number": lambda: LazyPrice(2.0),
    "numpy float": lambda: numpy.float64(1.5),
    "decimal nan": lambda: Decimal("NaN"),
    "status text": lambda: "ok",
    "raising __class__": BadClass,
    "numpy int": lambda: numpy.int64(3),
}
EXCEPTIONS: dict[str, Callable[[], BaseException]] = {
    "unrenderable timeout": RequestTimeout,
    "invalid order": lambda: ValueError("Invalid order"),
}
field_value = st.sampled_from(sorted(FIELD_VALUES))
Recipe = tuple[str, Any]  # ("order", (key, field value name)), ("trade", {...}), ("value", name), ("raise", name)
recipes = st.one_of(
    st.tuples(st.just("order"), st.tuples(st.sampled_from(sorted(ORDER)), field_value)),
    st.tuples(
        st.just("trade"),
        st.fixed_dictionaries(
            {},
            optional={
                "r_multiple": st.one_of(st.floats(-5, 5).map(str), field_value),
                "pnl": st.one_of(st.floats(-100, 100).map(str), field_value),
                "outcome": st.one_of(st.sampled_from(["=win", "=loss"]), field_value),
                "symbol": st.one_of(st.just("=ETH/USDT"), field_value),
            },
        ),
    ),
    st.tuples(st.just("value"), st.sampled_from(sorted(OTHER_RESULTS) + sorted(FIELD_VALUES))),
    st.tuples(st.just("raise"), st.sampled_from(sorted(EXCEPTIONS))),
)


def _field(text: str) -> Any:
    """A field value from its recipe: a hostile value's name, ``=text``, or a number written as text."""
    if text in FIELD_VALUES:
        return FIELD_VALUES[text]()
    if text.startswith("="):
        return text[1:]
    return float(text)


def build(recipe: Recipe) -> tuple[str, Any]:
    """``("return", value)`` or ``("raise", exception)`` from a recipe."""
    what, detail = recipe
    if what == "order":
        key, value = detail
        return "return", {**ORDER, key: _field(value)}
    if what == "trade":
        return "return", {key: _field(value) for key, value in detail.items()}
    if what == "raise":
        return "raise", EXCEPTIONS[detail]()
    return "return", {**OTHER_RESULTS, **FIELD_VALUES}[detail]()


# --- decorators and what each must account for --------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A decorator and the measurements it attempts per call: (total read from a capture, drop reasons)."""

    make: Callable[[tradetel.Telemetry], Any]
    on_return: Callable[[Capture], float] | None
    on_raise: Callable[[Capture], float] | None
    substitutes: tuple[tuple[str, str], ...] = ()  # (reason, instrument) of drops standing for the measurement


def _sum(*names: str) -> Callable[[Capture], float]:
    return lambda cap: sum(cap.value(name) for name in names)


def _count(name: str) -> Callable[[Capture], float]:
    return lambda cap: cap.histogram(name).count


CASES: dict[str, Case] = {
    "timed": Case(
        lambda tel: timed("orders.latency", telemetry=tel, exchange="binance", from_result={"symbol": "symbol"}),
        _count("orders.latency"),
        _count("orders.latency"),
        (("invalid_attribute", "orders.latency"),),
    ),
    "counted": Case(
        lambda tel: counted("orders.filled", telemetry=tel, from_result={"symbol": "symbol", "side": "side"}),
        _sum("orders.filled"),
        _sum("orders.filled"),
        (("invalid_attribute", "orders.filled"),),
    ),
    "in_flight": Case(lambda tel: in_flight("orders.pending", telemetry=tel, exchange="binance"), None, None),
    "count_exceptions": Case(
        lambda tel: count_exceptions("exchange.errors", telemetry=tel, exchange="binance"),
        None,
        _sum("exchange.errors"),
    ),
    "exchange_call": Case(
        lambda tel: exchange_call(telemetry=tel, exchange="binance"), _sum("exchange.requests"), _sum("exchange.errors")
    ),
    "order_placement": Case(
        lambda tel: order_placement(telemetry=tel, exchange="binance", reference_price=100.0),
        _sum("orders.filled", "orders.partially_filled", "orders.rejected"),
        _sum("orders.rejected"),
        (
            ("unreadable_order", "order_placement(place)"),
            ("invalid_attribute", "orders.filled"),
            ("invalid_attribute", "orders.partially_filled"),
            ("invalid_attribute", "orders.rejected"),
        ),
    ),
    "order_cancel": Case(
        lambda tel: order_cancel(telemetry=tel, exchange="binance"),
        _sum("orders.cancelled"),
        None,
        (("invalid_attribute", "orders.cancelled"),),
    ),
    "trade_close": Case(
        lambda tel: trade_close(telemetry=tel, strategy="grid", from_result={"symbol": "symbol"}),
        _sum("trades.closed"),
        None,
        (
            ("unreadable_trade", "trade_close(place)"),
            ("invalid_attribute", "trades.closed"),
        ),
    ),
    "strategy_cycle": Case(
        lambda tel: strategy_cycle(telemetry=tel, strategy="grid", status=lambda result: result),
        _sum("strategy.cycles"),
        _sum("strategy.cycles"),
        (("invalid_attribute", "strategy.cycles"),),
    ),
    "strategy_stage": Case(
        lambda tel: strategy_stage("fetch", telemetry=tel, strategy="grid"),
        _count("strategy.stage.duration"),
        _count("strategy.stage.duration"),
    ),
    "signal_handler": Case(
        lambda tel: signal_handler(
            telemetry=tel, source="tradingview", rejection=lambda result: result, from_result={"symbol": "symbol"}
        ),
        _sum("signals.received"),
        _sum("signals.received"),
        (("invalid_attribute", "signals.received"),),
    ),
}
FUNCTION_KINDS = ("sync", "async", "generator")


def _decorate(case: Case, tel: tradetel.Telemetry, kind: str, behave: Callable[[], Any]) -> Callable[[], Any]:
    """Decorate a function of ``kind`` that runs ``behave``; return a plain callable running it to the end."""
    decorator = case.make(tel)
    if kind == "sync":

        def place(symbol: str = "BTC/USDT", side: str = "buy") -> Any:
            return behave()

        return lambda: decorator(place)()
    if kind == "async":

        async def place_async(symbol: str = "BTC/USDT", side: str = "buy") -> Any:
            return behave()

        place_async.__name__ = "place"
        return lambda: _drive(decorator(place_async)())

    def place_gen(symbol: str = "BTC/USDT", side: str = "buy") -> Any:
        yield None
        return behave()

    place_gen.__name__ = "place"

    def run() -> Any:
        generator = decorator(place_gen)()
        next(generator)
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value
        raise AssertionError("the generator yielded twice")

    return run


def _drive(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends to its end.

    Not ``asyncio.run``: when an exception whose ``__repr__`` raises leaves it, CPython's own clean-up
    in ``asyncio.runners`` fails on it (a different error replaces the user's), which is not tradetel's
    doing. Awaiting real suspensions is covered by tests/test_decorators.py.
    """
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise AssertionError("the coroutine suspended")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def log() -> Iterator[_Records]:
    """What tradetel logs, kept off the console (hypothesis runs outside caplog)."""
    logger = logging.getLogger("tradetel")
    handler = _Records()
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield handler
    finally:
        logger.propagate = propagate
        logger.removeHandler(handler)


calls = st.lists(
    st.tuples(
        st.sampled_from(sorted(CASES)),
        st.sampled_from(FUNCTION_KINDS),
        recipes,
    ),
    min_size=1,
    max_size=4,
)


def _run_call(cap: Capture, name: str, kind: str, recipe: Recipe) -> tuple[float, float]:
    """One decorated call; returns (attempted, accounted): measurements attempted and recorded or dropped."""
    case = CASES[name]
    action, payload = build(recipe)
    raised = payload if action == "raise" else None

    def behave() -> Any:
        if raised is not None:
            raise raised
        return payload

    total = case.on_raise if raised is not None else case.on_return
    before = total(cap) if total is not None else 0.0
    drops = _dropped(cap, case)
    run = _decorate(case, cap.telemetry, kind, behave)
    strict = cap.telemetry.strict
    error: BaseException | None = None
    try:
        result = run()
    except MeasurementError:
        assert strict and raised is None, "a typed error only in strict mode, only after a call that returned"
        return 0.0, 0.0
    except BaseException as caught:  # whatever escapes is checked just below
        error = caught
    if error is not None:
        assert error is raised, f"{name}/{kind}: {type(error).__name__} escaped"
        return _accounting(cap, case, total, before, drops)
    assert raised is None
    assert result is payload, f"{name}/{kind}: the result did not come back unchanged"
    return _accounting(cap, case, total, before, drops)


def _dropped(cap: Capture, case: Case) -> float:
    """Drops standing for the attempted measurement; a decorator's own drops are named ``decorator(function)``."""
    total = 0.0
    for reason, instrument in case.substitutes:
        name = instrument if "(" in instrument else cap.telemetry.instrument(instrument).name
        total += cap.value("tradetel.measurements.dropped", reason=reason, instrument=name)
    return total


def _accounting(
    cap: Capture, case: Case, total: Callable[[Capture], float] | None, before: float, drops: float
) -> tuple[float, float]:
    if total is None:
        return 0.0, 0.0
    recorded = total(cap) - before
    dropped = _dropped(cap, case) - drops
    return 1.0, recorded + dropped


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(calls)
def test_hostile_results_and_exceptions_through_every_decorator(
    log: _Records, calls_: list[tuple[str, str, Recipe]]
) -> None:
    """Default mode: results and exceptions pass unchanged, every attempted measurement is recorded or dropped."""
    log.messages.clear()
    with capture() as cap:
        for name, kind, behaviour in calls_:
            attempted, accounted = _run_call(cap, name, kind, behaviour)
            assert accounted == attempted, (name, kind, behaviour)
        assert cap.value("orders.pending") == 0
    assert not [m for m in log.messages if "failed to record" in m or "could not record" in m]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(calls)
def test_strict_mode_raises_only_typed_errors_or_the_callers_own(
    log: _Records, calls_: list[tuple[str, str, Recipe]]
) -> None:
    """Strict mode: the only errors are the function's own exception (unchanged) or a typed MeasurementError."""
    with capture(strict=True) as cap:
        for name, kind, behaviour in calls_:
            _run_call(cap, name, kind, behaviour)
    assert not [m for m in log.messages if "failed to record" in m]
