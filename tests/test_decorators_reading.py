"""What decorators read, when they read it, and what they do when they cannot read it.

Exceptions that cannot be rendered are still counted (their reason categorised from the class name);
values can be read from the arguments after the call (:class:`tradetel.after`); the default order and
trade readers record nothing partial from a result they cannot read: they drop, count and log once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from tradetel import ConfigurationError, InvalidValueError
from tradetel.decorators import after, count_exceptions, counted, exchange_call, order_placement, trade_close
from tradetel.testing import Capture

# --- exceptions that cannot be rendered -----------------------------------------------------------------


class RequestTimeout(Exception):  # noqa: N818 - named like ccxt's exception
    """A timeout whose message cannot be rendered: ``__str__``, ``__repr__`` and ``args`` raise."""

    def __str__(self) -> str:
        raise RuntimeError("no message")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    @property
    def args(self) -> tuple[Any, ...]:  # type: ignore[override]
        raise RuntimeError("no args")


class InsufficientFunds(Exception):  # noqa: N818 - named like ccxt's exception
    """A rejection whose ``__str__`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("no message")


def test_an_unprintable_exchange_error_is_counted_by_its_type(cap: Capture) -> None:
    """exchange_call counts an error whose __str__ raises, categorised from its class name, and re-raises it."""
    error = RequestTimeout()

    @exchange_call(exchange="binance", telemetry=cap.telemetry)
    def fetch_ticker(symbol: str) -> dict[str, Any]:
        raise error

    for _ in range(2):
        with pytest.raises(RequestTimeout) as raised:
            fetch_ticker("BTC/USDT")
        assert raised.value is error
    assert cap.value("exchange.errors", exchange="binance", endpoint="fetch_ticker", error_type="timeout") == 2
    assert cap.value("exchange.requests", status="error") == 2
    assert cap.series("exchange.error_streak") == [({"exchange": "binance"}, 2)]
    assert cap.dropped() == 0


def test_an_unprintable_rejection_is_counted_by_its_type(cap: Capture) -> None:
    """order_placement counts a rejection whose __str__ raises, with a reason categorised from its class name."""

    @order_placement(exchange="binance", telemetry=cap.telemetry)
    async def place(symbol: str, side: str) -> dict[str, Any]:
        raise InsufficientFunds

    with pytest.raises(InsufficientFunds):
        asyncio.run(place("BTC/USDT", "buy"))
    assert cap.value("orders.rejected", exchange="binance", reason="insufficient_funds") == 1
    assert cap.dropped() == 0


def test_an_unprintable_exception_is_counted_by_count_exceptions(cap: Capture) -> None:
    """count_exceptions counts an exception whose __str__ raises, in a generator, and re-raises it."""

    @count_exceptions("exchange.errors", exchange="kraken", endpoint="stream", telemetry=cap.telemetry)
    def stream() -> Any:
        yield 1
        raise RequestTimeout

    with pytest.raises(RequestTimeout):
        list(stream())
    assert cap.value("exchange.errors", exchange="kraken", error_type="timeout") == 1


def test_an_unprintable_exception_passes_unchanged_in_strict_mode(strict_cap: Capture) -> None:
    """In strict mode the user's exception is re-raised unchanged and still counted; no tradetel error replaces it."""
    error = RequestTimeout()

    @exchange_call(exchange="binance", telemetry=strict_cap.telemetry)
    def fetch_balance() -> None:
        raise error

    with pytest.raises(RequestTimeout) as raised:
        fetch_balance()
    assert raised.value is error
    assert strict_cap.value("exchange.errors", error_type="timeout") == 1


# --- values read after the call -------------------------------------------------------------------------


@dataclass
class Trade:
    symbol: str
    pl: float | None = None
    r: float | None = None


def test_after_reads_an_argument_when_the_call_ends(cap: Capture) -> None:
    """pnl=after("trade.pl") records the PnL the close method wrote into the trade, not the value it had before."""

    @trade_close(strategy="grid", pnl=after("trade.pl"), from_args={"symbol": "trade.symbol"}, telemetry=cap.telemetry)
    def close(trade: Trade) -> None:
        trade.pl = -12.5

    close(Trade("ETH/USDT", pl=0.0))
    assert cap.value("trades.realized_pnl", symbol="ETH/USDT", strategy="grid") == -12.5
    assert cap.value("trades.closed", symbol="ETH/USDT", outcome="loss") == 1


def test_trade_close_reads_its_values_after_the_call_by_default(cap: Capture) -> None:
    """trade_close's pnl="trade.pl" and r_multiple="trade.r" are read when the call ends (a trade's final values)."""

    @trade_close(strategy="grid", pnl="trade.pl", r_multiple="trade.r", telemetry=cap.telemetry)
    async def close(trade: Trade) -> None:
        trade.pl, trade.r = 30.0, 1.5

    asyncio.run(close(Trade("BTC/USDT")))
    assert cap.value("trades.realized_pnl") == 30.0
    assert cap.histogram("trades.r_multiple").sum == 1.5
    assert cap.value("trades.closed", outcome="win") == 1


def test_other_decorators_read_arguments_when_the_call_starts(cap: Capture) -> None:
    """A plain parameter name is read at the start; wrapped in after() the same parameter is read at the end."""
    order = {"symbol": "BTC/USDT", "ref": 100.0}

    @counted("orders.filled", from_args={"symbol": "order.symbol"}, telemetry=cap.telemetry)
    def early(order: dict[str, Any]) -> None:
        order["symbol"] = "ETH/USDT"

    @counted("orders.filled", from_args={"symbol": after("order.symbol")}, telemetry=cap.telemetry)
    def late(order: dict[str, Any]) -> None:
        order["symbol"] = "SOL/USDT"

    early(order)
    late(order)
    assert sorted((a["symbol"], v) for a, v in cap.series("orders.filled")) == [("BTC/USDT", 1), ("SOL/USDT", 1)]


def test_after_takes_a_callable_of_the_bound_arguments(cap: Capture) -> None:
    """after(callable) receives the call's bound arguments by name once the call is over."""

    @trade_close(pnl=after(lambda arguments: arguments["book"]["pl"] * arguments["size"]), telemetry=cap.telemetry)
    def close(book: dict[str, float], size: float = 2.0) -> None:
        book["pl"] = 4.0

    close({"pl": 0.0})
    assert cap.value("trades.realized_pnl") == 8.0


def test_after_is_checked_when_decorating() -> None:
    """after() of something that is neither a parameter path nor a callable, or naming no parameter, is refused."""
    with pytest.raises(ConfigurationError, match=r"after\(\.\.\.\)"):
        after(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"trade_close\(pnl=\.\.\.\)"):
        trade_close(pnl=after("nope"))(lambda trade: None)
    with pytest.raises(ConfigurationError, match="static values in a with block"), trade_close(pnl=after("trade.pl")):
        pass


def test_a_failing_after_reader_is_counted(cap: Capture) -> None:
    """An after() callable that raises drops that value, counted as extractor_error; the call is unaffected."""

    @counted("orders.filled", from_args={"symbol": after(lambda arguments: arguments["nope"])}, telemetry=cap.telemetry)
    def fill(order: dict[str, Any]) -> str:
        return "done"

    assert fill({}) == "done"
    assert cap.series("orders.filled") == [({}, 1)]
    assert cap.dropped("extractor_error") == 1


# --- default readers that cannot read what they were given ----------------------------------------------


class Exploding:
    """An object whose every attribute access raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


@pytest.mark.parametrize(
    ("result", "missing"),
    [
        ("closed", "no r_multiple, pnl or outcome"),
        ({"pnl": "a lot"}, "pnl is not a finite number"),
        ({"r_multiple": 1.2, "outcome": 3}, "outcome is a int"),
        (float("nan"), "not a finite number"),
        (Exploding(), "reading 'r_multiple' raised RuntimeError"),
        (None, "no outcome, pnl or r_multiple"),
    ],
    ids=["text", "pnl-text", "outcome-int", "nan", "exploding", "none"],
)
def test_an_unreadable_trade_records_nothing(
    cap: Capture, caplog: pytest.LogCaptureFixture, result: object, missing: str
) -> None:
    """The default trade reader records nothing of a trade it cannot read; it drops, counts and logs once."""
    caplog.set_level(logging.WARNING, logger="tradetel")

    @trade_close(strategy="grid", telemetry=cap.telemetry)
    def close_position(symbol: str) -> object:
        return result

    assert close_position("BTC/USDT") is result
    assert close_position("BTC/USDT") is result
    assert cap.series("trades.closed") == []
    assert cap.histogram("trades.r_multiple").count == 0
    assert cap.series("trades.realized_pnl") == []
    assert (
        cap.value("tradetel.measurements.dropped", reason="unreadable_trade", instrument="trade_close(close_position)")
        == 2
    )
    lines = [r.getMessage() for r in caplog.records if "trade_close(close_position)" in r.getMessage()]
    assert len(lines) == 1
    assert missing in lines[0]


def test_a_trade_given_by_argument_needs_no_result(cap: Capture) -> None:
    """A close that returns nothing is recorded when its values come from the arguments."""

    @trade_close(r_multiple="r", telemetry=cap.telemetry)
    def on_exit(symbol: str, r: float) -> None: ...

    on_exit("EUR/USD", -1.0)
    assert cap.value("trades.closed", outcome="loss") == 1
    assert cap.dropped() == 0


def test_an_unreadable_trade_raises_in_strict_mode(strict_cap: Capture) -> None:
    """Strict mode raises InvalidValueError naming the decorator and what was wrong, after the call ran."""
    ran = []

    @trade_close(telemetry=strict_cap.telemetry)
    def close() -> dict[str, object]:
        ran.append(1)
        return {"pnl": object()}

    with pytest.raises(InvalidValueError, match=r"trade_close\(close\).*pnl is not a finite number"):
        close()
    assert ran == [1]
    assert strict_cap.series("trades.closed") == []


@pytest.mark.parametrize(
    ("result", "missing"),
    [
        ({"status": "closed", "filled": "lots", "amount": 1}, "filled is not a finite number"),
        ({"status": 1, "filled": 1, "amount": 1}, "status is a int"),
        ({"id": "123", "info": {}}, "no status, filled or amount"),
        (Exploding(), "reading 'status' raised RuntimeError"),
        (None, "returned None"),
    ],
    ids=["filled-text", "status-int", "id-only", "exploding", "none"],
)
def test_an_unreadable_order_records_no_outcome(
    cap: Capture, caplog: pytest.LogCaptureFixture, result: object, missing: str
) -> None:
    """The default order reader records no outcome, notional or slippage from an order it cannot read; counted."""
    caplog.set_level(logging.WARNING, logger="tradetel")

    @order_placement(exchange="binance", reference_price=100.0, telemetry=cap.telemetry)
    def place(symbol: str, side: str) -> object:
        return result

    assert place("BTC/USDT", "buy") is result
    assert cap.value("orders.submitted") == 1
    assert cap.histogram("orders.latency", stage="ack").count == 1  # the call's duration is still true
    for name in ("orders.filled", "orders.partially_filled", "orders.rejected"):
        assert cap.value(name) == 0
    assert cap.histogram("orders.notional").count == 0
    assert cap.histogram("orders.slippage").count == 0
    assert (
        cap.value("tradetel.measurements.dropped", reason="unreadable_order", instrument="order_placement(place)") == 1
    )
    lines = [r.getMessage() for r in caplog.records if "order_placement(place)" in r.getMessage()]
    assert len(lines) == 1
    assert missing in lines[0]


def test_a_readable_order_still_records_everything(cap: Capture) -> None:
    """A ccxt order with numeric strings and None fields is read as before: outcome, notional and slippage."""

    @order_placement(exchange="binance", reference_price=100.0, telemetry=cap.telemetry)
    def place(symbol: str, side: str) -> dict[str, object]:
        return {"status": "closed", "filled": "2", "amount": 2.0, "average": 101.0, "price": None, "side": "buy"}

    place("BTC/USDT", "buy")
    assert cap.value("orders.filled") == 1
    assert cap.histogram("orders.notional").sum == 202.0
    assert cap.histogram("orders.slippage").count == 1
    assert cap.dropped() == 0


def test_after_is_exported_from_the_package() -> None:
    """``after`` is part of the public surface of tradetel and of tradetel.decorators."""
    import tradetel
    import tradetel.decorators

    assert tradetel.after is after
    assert "after" in tradetel.__all__
    assert "after" in tradetel.decorators.__all__
