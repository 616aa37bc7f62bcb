"""How the decorators resolve telemetry, read attributes, fail on bad configuration and behave as context managers."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

import tradetel
from tradetel.decorators import (
    Call,
    SignalRejected,
    count_exceptions,
    counted,
    exchange_call,
    in_flight,
    order_placement,
    signal_handler,
    strategy_cycle,
    strategy_stage,
    timed,
    trade_close,
)
from tradetel.errors import ConfigurationError, InvalidValueError
from tradetel.testing import Capture, capture

# --- telemetry resolution ---------------------------------------------------------------------------


def test_default_telemetry_is_resolved_at_call_time(cap: Capture) -> None:
    """Decorating before any telemetry exists is side-effect free; the default set later receives the calls."""

    @counted("orders.filled", exchange="binance")
    def fill() -> str:
        return "done"

    assert cap.value("orders.filled") == 0
    tradetel.set_default(cap.telemetry)
    assert fill() == "done"
    assert cap.value("orders.filled", exchange="binance") == 1


def test_default_change_moves_recording_to_the_new_telemetry() -> None:
    """Switching the default between calls sends each call to the telemetry current at that call."""

    @counted("orders.filled")
    def fill() -> None:
        pass

    with capture() as first, capture() as second:
        tradetel.set_default(first.telemetry)
        fill()
        tradetel.set_default(second.telemetry)
        fill()
        fill()
        assert (first.value("orders.filled"), second.value("orders.filled")) == (1, 2)


def test_without_telemetry_the_call_runs_plain_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    """With no telemetry anywhere the call still returns and raises as usual, and one warning is logged."""
    caplog.set_level(logging.WARNING, logger="tradetel")

    @order_placement(exchange="binance")
    def place(symbol: str) -> dict[str, str]:
        if symbol == "bad":
            raise ValueError("bad symbol")
        return {"symbol": symbol}

    assert place("BTC/USDT") == {"symbol": "BTC/USDT"}
    assert place("ETH/USDT") == {"symbol": "ETH/USDT"}
    with pytest.raises(ValueError, match="bad symbol"):
        place("bad")
    warnings = [r for r in caplog.records if "records nothing" in r.getMessage()]
    assert len(warnings) == 1
    assert "place" in warnings[0].getMessage()


def test_handle_records_without_any_telemetry(cap: Capture) -> None:
    """A handle given instead of a name is enough: no telemetry= and no default needed."""
    handle = cap.telemetry["orders.latency"]

    @timed(handle, exchange="kraken")
    def work() -> int:
        return 7

    assert tradetel.get_default() is None
    assert work() == 7
    assert cap.histogram("orders.latency", exchange="kraken").count == 1


# --- configuration errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "setting"),
    [
        (lambda tel: timed("orders.nope", telemetry=tel), "timed(instrument='orders.nope')"),
        (lambda tel: timed("orders.filled", telemetry=tel), "timed(instrument='orders.filled')"),
        (lambda tel: in_flight("orders.filled", telemetry=tel), "in_flight(instrument='orders.filled')"),
        (lambda tel: counted("orders.filled", telemetry=tel, account="main"), "counted(account=...)"),
        (lambda tel: exchange_call(telemetry=tel, strategy="grid"), "exchange_call(strategy=...)"),
    ],
)
def test_configuration_errors_raise_at_decoration(make: Any, setting: str, cap: Capture) -> None:
    """An unknown instrument, a wrong kind or an attribute key no instrument accepts fails when decorating."""
    with pytest.raises(ConfigurationError) as raised:
        make(cap.telemetry)
    assert raised.value.setting == setting


def test_unknown_parameter_in_from_args_raises_at_decoration(cap: Capture) -> None:
    """from_args naming a parameter the function does not have fails at decoration, listing the parameters."""
    decorate = counted("orders.filled", telemetry=cap.telemetry, from_args={"symbol": "sym"})
    with pytest.raises(ConfigurationError, match=r"a parameter of place\(symbol") as raised:

        @decorate
        def place(symbol: str) -> None:
            pass

    assert raised.value.setting == "counted(from_args['symbol'])"


def test_from_args_through_kwargs_is_accepted(cap: Capture) -> None:
    """A parameter that may arrive through **kwargs is read when it does."""

    @counted("orders.filled", telemetry=cap.telemetry, from_args={"symbol": "symbol"})
    def place(**params: Any) -> None:
        pass

    place(symbol="SOL/USDT")
    place()
    assert cap.series("orders.filled") == [({"symbol": "SOL/USDT"}, 1), ({}, 1)]


def test_configuration_error_at_call_time_is_logged_once(cap: Capture, caplog: pytest.LogCaptureFixture) -> None:
    """A bad decorator found at call time (default telemetry) never breaks the call: logged once, nothing recorded."""
    caplog.set_level(logging.WARNING, logger="tradetel")

    @timed("orders.nope")
    def work() -> int:
        return 1

    tradetel.set_default(cap.telemetry)
    assert [work(), work()] == [1, 1]
    assert len([r for r in caplog.records if "records nothing" in r.getMessage()]) == 1


def test_configuration_error_at_call_time_raises_in_strict_mode(strict_cap: Capture) -> None:
    """In strict mode the same bad decorator raises ConfigurationError at its first call."""

    @timed("orders.nope")
    def work() -> int:
        return 1

    tradetel.set_default(strict_cap.telemetry)
    with pytest.raises(ConfigurationError):
        work()


# --- attributes -------------------------------------------------------------------------------------


def test_from_args_reads_defaults_keywords_paths_and_callables(cap: Capture) -> None:
    """Attributes come from positional or keyword arguments, defaults, dotted paths and callables."""

    def venue(arguments: Mapping[str, Any]) -> str:
        return str(arguments["route"]).split(":")[0]

    @counted(
        "orders.filled",
        telemetry=cap.telemetry,
        from_args={"symbol": "order.symbol", "side": "side", "exchange": venue},
    )
    def fill(order: dict[str, str], side: str = "sell", *, route: str = "kraken:spot") -> None:
        pass

    fill({"symbol": "BTC/EUR"})
    fill({"symbol": "BTC/EUR"}, side="buy", route="bitstamp:spot")
    assert sorted(cap.series("orders.filled"), key=str) == [
        ({"symbol": "BTC/EUR", "side": "buy", "exchange": "bitstamp"}, 1),
        ({"symbol": "BTC/EUR", "side": "sell", "exchange": "kraken"}, 1),
    ]


def test_from_args_reads_self_of_a_method(cap: Capture) -> None:
    """A dotted path from ``self`` reads instance state, such as the exchange id of a client."""

    class Client:
        id = "okx"

        @exchange_call(telemetry=cap.telemetry, from_args={"exchange": "self.id"})
        def fetch_balance(self) -> dict[str, float]:
            return {"USDT": 10.0}

    assert Client().fetch_balance() == {"USDT": 10.0}
    assert cap.value("exchange.requests", exchange="okx", endpoint="fetch_balance", status="ok") == 1


def test_from_result_attributes(cap: Capture) -> None:
    """from_result reads attributes from the return value, as paths or callables."""

    @counted("orders.filled", telemetry=cap.telemetry, from_result={"symbol": "info.symbol", "side": lambda r: r[1]})
    def fill() -> tuple[str, str]:
        return ("x", "buy")

    @counted("orders.cancelled", telemetry=cap.telemetry, from_result={"symbol": "info.symbol"})
    def cancel() -> dict[str, dict[str, str]]:
        return {"info": {"symbol": "ADA/USDT"}}

    fill()
    cancel()
    assert cap.series("orders.filled") == [({"side": "buy"}, 1)]
    assert cap.series("orders.cancelled") == [({"symbol": "ADA/USDT"}, 1)]


def test_values_go_through_label_policies(cap: Capture) -> None:
    """Attribute values are normalised by the catalog: aliases, folded reasons, unknown enumerations."""

    @order_placement(telemetry=cap.telemetry, exchange="binance")
    def place(symbol: str, side: str, type: str) -> dict[str, Any]:  # noqa: A002 - ccxt's parameter name
        raise RuntimeError("Account has insufficient balance for requested action")

    for side in ("long", "SHORT", "sideways"):
        with pytest.raises(RuntimeError):
            place("BTC/USDT", side, "stop_market")
    assert sorted((a["side"], a["order_type"], a["reason"], v) for a, v in cap.series("orders.rejected")) == [
        ("buy", "stop", "insufficient_funds", 1),
        ("other", "stop", "insufficient_funds", 1),
        ("sell", "stop", "insufficient_funds", 1),
    ]


def test_none_argument_values_are_left_out(cap: Capture) -> None:
    """An argument that is None does not become a 'none' label value."""

    @counted("orders.cancelled", telemetry=cap.telemetry, from_args={"symbol": "symbol"})
    def cancel(order_id: str, symbol: str | None = None) -> None:
        pass

    cancel("1")
    assert cap.series("orders.cancelled") == [({}, 1)]


# --- context managers -------------------------------------------------------------------------------


def test_context_manager_times_a_block(cap: Capture) -> None:
    """``with`` records like a decorated call, including when the block raises."""
    stage = strategy_stage("fetch", strategy="grid", telemetry=cap.telemetry)
    with stage:
        pass
    with pytest.raises(KeyError), stage:
        raise KeyError("x")
    assert cap.histogram("strategy.stage.duration", stage="fetch", strategy="grid").count == 2


def test_async_context_manager(cap: Capture) -> None:
    """``async with`` works the same way and hands over the Call."""

    async def main() -> None:
        async with signal_handler(source="tradingview", telemetry=cap.telemetry) as call:
            assert isinstance(call, Call)
            assert cap.value("signals.in_flight") == 1
            call.reject("stale")

    asyncio.run(main())
    assert cap.value("signals.rejected", source="tradingview", reason="stale") == 1
    assert cap.histogram("signals.processing.duration", status="rejected").count == 1
    assert cap.value("signals.in_flight") == 0


def test_context_manager_set_result_feeds_order_values(cap: Capture) -> None:
    """In a ``with`` block, set_result and set() provide what a decorated call reads from its result."""
    with order_placement(exchange="binance", reference_price=100.0, telemetry=cap.telemetry) as call:
        call.set(time_in_force="IOC")
        call.set_result({"status": "closed", "filled": 1, "amount": 1, "average": 99.5, "side": "sell", "symbol": "X"})
    assert cap.value("orders.filled", symbol="X", side="sell") == 1
    assert cap.histogram("orders.slippage", side="sell").sum == pytest.approx(50.0)  # sold 50 bp below: worse
    assert cap.value("orders.submitted", exchange="binance") == 1


def test_context_manager_rejects_argument_sources(cap: Capture) -> None:
    """A ``with`` block has no arguments, so from_args or parameter-name values are a configuration error."""
    with pytest.raises(ConfigurationError, match="with block"):  # noqa: SIM117 - the inner with is under test
        with counted("orders.filled", telemetry=cap.telemetry, from_args={"symbol": "symbol"}):
            pass


def test_context_manager_status(cap: Capture) -> None:
    """set_status chooses a strategy cycle's status inside a ``with`` block."""
    with strategy_cycle(strategy="grid", telemetry=cap.telemetry) as call:
        call.set_status("no_trade")
    assert cap.series("strategy.cycles") == [({"strategy": "grid", "status": "skipped"}, 1)]


def test_one_object_nested_and_concurrent(cap: Capture) -> None:
    """The same decorator object used in nested blocks and in many threads keeps per-call state apart."""
    pending = in_flight("orders.pending", telemetry=cap.telemetry, exchange="binance")
    seen: list[float] = []
    with pending, pending:
        seen.append(cap.value("orders.pending"))
    assert seen == [2]
    assert cap.value("orders.pending") == 0

    barrier = threading.Barrier(8)

    def worker() -> None:
        with pending:
            barrier.wait(timeout=10)
            for _ in range(50):
                with pending:
                    pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert cap.value("orders.pending") == 0


def test_concurrent_decorated_calls_count_exactly(cap: Capture) -> None:
    """Many threads through one decorated function lose no measurement."""

    @exchange_call(telemetry=cap.telemetry, exchange="binance")
    def fetch_ticker(n: int) -> int:
        return n

    def worker() -> None:
        for n in range(200):
            fetch_ticker(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert cap.value("exchange.requests", status="ok") == 800
    assert cap.histogram("exchange.request.duration").count == 800


# --- generators -------------------------------------------------------------------------------------


def test_generator_time_covers_iteration_and_close(cap: Capture) -> None:
    """A generator is measured from its first item to exhaustion, or to close() when abandoned early."""
    stage = strategy_stage("stream", telemetry=cap.telemetry, strategy="grid")

    @stage
    def stream() -> Iterator[int]:
        yield from range(5)

    gen = stream()
    assert cap.value("orders.pending") == 0
    assert next(gen) == 0
    assert cap.histogram("strategy.stage.duration").count == 0  # still iterating
    gen.close()
    assert cap.histogram("strategy.stage.duration").count == 1
    assert list(stream()) == [0, 1, 2, 3, 4]
    assert cap.histogram("strategy.stage.duration").count == 2
    never_started = stream()
    never_started.close()
    assert cap.histogram("strategy.stage.duration").count == 2


def test_generator_send_and_throw_pass_through(cap: Capture) -> None:
    """send() and throw() reach the wrapped generator, and its handling of them is kept."""

    @in_flight("orders.pending", telemetry=cap.telemetry)
    def echo() -> Iterator[str]:
        received = "start"
        while True:
            try:
                received = yield received
            except KeyError:
                received = "recovered"

    gen = echo()
    assert next(gen) == "start"
    assert gen.send("ping") == "ping"
    assert gen.throw(KeyError("k")) == "recovered"
    assert cap.value("orders.pending") == 1
    gen.close()
    assert cap.value("orders.pending") == 0


def test_async_generator_asend_athrow_and_aclose(cap: Capture) -> None:
    """asend(), athrow() and aclose() reach the wrapped async generator; errors are recorded once."""

    @signal_handler(source="feed", telemetry=cap.telemetry)
    async def echo() -> AsyncIterator[str]:
        received = "start"
        while True:
            try:
                received = yield received
            except KeyError:
                received = "recovered"
            if received == "boom":
                raise ValueError("boom")

    async def main() -> None:
        gen = echo()
        assert await gen.__anext__() == "start"
        assert await gen.asend("ping") == "ping"
        assert await gen.athrow(KeyError("k")) == "recovered"
        await gen.aclose()
        failing = echo()
        await failing.__anext__()
        with pytest.raises(ValueError, match="boom"):
            await failing.asend("boom")

    asyncio.run(main())
    assert cap.histogram("signals.processing.duration", status="ok").count == 1
    assert cap.histogram("signals.processing.duration", status="error").count == 1
    assert cap.value("signals.in_flight") == 0


# --- exceptions that are not failures ---------------------------------------------------------------


def test_cancellation_is_timed_but_not_counted_as_error(cap: Capture) -> None:
    """A cancelled coroutine releases in-flight and records its duration, but counts no error or request."""
    started = asyncio.Event()

    @in_flight("orders.pending", telemetry=cap.telemetry)
    @exchange_call(telemetry=cap.telemetry, exchange="binance")
    async def slow() -> None:
        started.set()
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.create_task(slow())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cap.value("orders.pending") == 0
    assert cap.histogram("exchange.request.duration").count == 1
    assert cap.value("exchange.requests") == 0
    assert cap.value("exchange.errors") == 0


def test_count_exceptions_filters_by_class(cap: Capture) -> None:
    """Only the listed exception classes are counted; the error type folds class name and message."""

    @count_exceptions("exchange.errors", exceptions=(ConnectionError, LookupError), telemetry=cap.telemetry)
    def call(exc: Exception) -> None:
        raise exc

    for exc in (ConnectionResetError("peer"), KeyError("order 404 not found"), ValueError("nope")):
        with pytest.raises(type(exc)):
            call(exc)
    assert sorted((a["error_type"], v) for a, v in cap.series("exchange.errors")) == [
        ("connection_error", 1),
        ("not_found", 1),
    ]


# --- trading specifics ------------------------------------------------------------------------------


def _order(**fields: Any) -> dict[str, Any]:
    base = {"status": "open", "filled": 0.0, "amount": 2.0, "average": None, "price": 100.0}
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("order", "counter"),
    [
        (_order(status="closed", filled=2.0, average=100.0), "orders.filled"),
        (_order(status="open", filled=0.5, average=100.0), "orders.partially_filled"),
        (_order(status="canceled", filled=1.0, average=100.0), "orders.partially_filled"),
        (_order(status="rejected"), "orders.rejected"),
        (_order(status="closed", filled=None, amount=None), "orders.filled"),
        (_order(status="open"), None),
        (_order(status="expired"), None),
    ],
)
def test_order_outcomes(order: dict[str, Any], counter: str | None, cap: Capture) -> None:
    """The returned order's status and fill decide which one of filled, partially filled or rejected is counted."""

    @order_placement(telemetry=cap.telemetry, exchange="binance", symbol="BTC/USDT", side="buy")
    def place() -> dict[str, Any]:
        return order

    place()
    counts = {name: cap.value(name) for name in ("orders.filled", "orders.partially_filled", "orders.rejected")}
    assert counts == {name: (1 if name == counter else 0) for name in counts}
    assert cap.value("orders.submitted") == 1


@pytest.mark.parametrize(
    ("side", "average", "expected"),
    [("buy", 100.5, 50.0), ("buy", 99.5, -50.0), ("sell", 99.5, 50.0), ("sell", 100.5, -50.0)],
)
def test_slippage_sign(side: str, average: float, expected: float, cap: Capture) -> None:
    """Slippage is in basis points against the reference price, positive when the fill is worse."""

    @order_placement(telemetry=cap.telemetry, exchange="binance", reference_price=lambda order: order["info"]["ref"])
    def place(side: str) -> dict[str, Any]:
        return {"status": "closed", "filled": 1, "amount": 1, "average": average, "side": side, "info": {"ref": 100}}

    place(side)
    assert cap.histogram("orders.slippage", side=side).sum == pytest.approx(expected)
    assert cap.histogram("orders.notional").sum == pytest.approx(average)


def test_order_placement_with_an_object_result_and_custom_reader(cap: Capture) -> None:
    """An order given as an object with ccxt's attribute names, or through a custom reader, is read the same."""

    class Fill:
        status = "closed"
        filled = amount = 3.0
        average = 10.0
        side = "sell"
        symbol = "ETH/USDT"
        type = "market"

    @order_placement(telemetry=cap.telemetry, exchange="kraken")
    def place_object() -> Fill:
        return Fill()

    @order_placement(telemetry=cap.telemetry, exchange="kraken", order=lambda response: response["order"])
    def place_wrapped() -> dict[str, Any]:
        return {"ok": True, "order": {"status": "closed", "filled": "1", "amount": "1", "symbol": "ETH/USDT"}}

    place_object()
    place_wrapped()
    assert cap.value("orders.filled", exchange="kraken", symbol="ETH/USDT") == 2
    assert cap.value("orders.filled", side="sell", order_type="market") == 1
    assert cap.histogram("orders.notional").sum == 30.0


def test_exchange_error_streak_is_per_exchange(cap: Capture) -> None:
    """Consecutive errors accumulate across the calls of one exchange and reset after any success."""

    @exchange_call(telemetry=cap.telemetry, exchange="binance")
    def fetch_ticker(fail: bool) -> None:
        if fail:
            raise ConnectionError("connection reset")

    @exchange_call(telemetry=cap.telemetry, exchange="binance")
    def fetch_balance(fail: bool) -> None:
        if fail:
            raise RuntimeError("429 Too Many Requests")

    @exchange_call(telemetry=cap.telemetry, exchange="kraken")
    def fetch_trades() -> None:
        pass

    for function, fail in ((fetch_ticker, True), (fetch_balance, True), (fetch_ticker, True)):
        with pytest.raises(Exception):  # noqa: B017 - two exception types on purpose
            function(fail)
    fetch_trades()
    assert cap.value("exchange.error_streak", exchange="binance") == 3
    assert cap.value("exchange.error_streak", exchange="kraken") == 0
    assert cap.value("exchange.errors", endpoint="fetch_balance", error_type="rate_limit") == 1
    assert cap.value("exchange.errors", endpoint="fetch_ticker", error_type="connection_error") == 2
    fetch_balance(False)
    assert cap.value("exchange.error_streak", exchange="binance") == 0


@pytest.mark.parametrize(
    ("kwargs", "result", "outcome", "r_count"),
    [
        ({}, -1.0, "loss", 1),
        ({}, {"r": 0.02, "pnl": 0.0}, "breakeven", 1),
        ({"breakeven": 0.1}, 0.05, "breakeven", 1),
        ({}, {"outcome": "won"}, "win", 0),
        ({"r_multiple": "r"}, None, "win", 1),
        ({"pnl": lambda trade: trade.pnl}, type("Trade", (), {"pnl": -3.0})(), "loss", 0),
    ],
)
def test_trade_outcomes(kwargs: dict[str, Any], result: object, outcome: str, r_count: int, cap: Capture) -> None:
    """The outcome comes from an explicit field, else PnL, else R; R and PnL come from the result or arguments."""

    @trade_close(telemetry=cap.telemetry, strategy="s", **kwargs)
    def close(r: float = 1.5) -> object:
        return result

    close()
    assert cap.series("trades.closed") == [({"strategy": "s", "outcome": outcome}, 1)]
    assert cap.histogram("trades.r_multiple").count == r_count


def test_strategy_cycle_status_from_result(cap: Capture) -> None:
    """A status callable maps the result to skipped/ok; an exception gives error."""

    @strategy_cycle(telemetry=cap.telemetry, strategy="grid", status=lambda r: "skipped" if r is None else "ok")
    def cycle(trade: bool) -> str | None:
        if trade is None:
            raise RuntimeError("feed down")
        return "order" if trade else None

    cycle(True)
    cycle(False)
    cycle(False)
    with pytest.raises(RuntimeError):
        cycle(None)  # type: ignore[arg-type]
    statuses = {a["status"]: v for a, v in cap.series("strategy.cycles")}
    assert statuses == {"ok": 1, "skipped": 2, "error": 1}


def test_signal_rejections(cap: Capture) -> None:
    """Signals are rejected by SignalRejected, by reject_on exception classes or by the rejection callable."""

    @signal_handler(
        telemetry=cap.telemetry,
        source="tradingview",
        reject_on={KeyError: "invalid_payload", PermissionError: lambda exc: "signature"},
        rejection=lambda response: response.get("refused"),
    )
    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("age", 0) > 30:
            raise SignalRejected("too_old")
        if payload.get("sig") == "bad":
            raise PermissionError("bad signature")
        if payload.get("confidence", 1.0) < 0.5:
            return {"refused": "low confidence"}
        return {"symbol": payload["symbol"]}

    assert handle({"symbol": "BTC"}) == {"symbol": "BTC"}
    assert handle({"confidence": 0.1}) == {"refused": "low confidence"}
    for payload, error in (({"age": 60}, SignalRejected), ({"sig": "bad"}, PermissionError), ({}, KeyError)):
        with pytest.raises(error):
            handle(payload)
    reasons = {a["reason"]: v for a, v in cap.series("signals.rejected")}
    assert reasons == {"stale": 1, "invalid_signature": 1, "low_confidence": 1, "invalid_payload": 1}
    assert cap.value("signals.received", source="tradingview") == 5
    assert cap.histogram("signals.processing.duration", status="rejected").count == 4
    assert cap.histogram("signals.processing.duration", status="ok").count == 1


# --- reading problems -------------------------------------------------------------------------------


def test_extractor_error_is_dropped_and_counted(cap: Capture) -> None:
    """A result reader that raises drops that value (counted, logged once); the call and other values are kept."""

    @order_placement(telemetry=cap.telemetry, exchange="binance", reference_price=lambda order: order["missing"])
    def place() -> dict[str, Any]:
        return {"status": "closed", "filled": 1, "amount": 1, "average": 10.0, "side": "buy"}

    assert place()["status"] == "closed"
    assert cap.value("orders.filled") == 1
    assert cap.histogram("orders.slippage").count == 0
    assert cap.dropped(reason="extractor_error") == 1


def test_failing_argument_reader_never_stops_the_call(cap: Capture) -> None:
    """A from_args callable that raises is counted as dropped; the function still runs and is recorded."""

    @counted("orders.filled", telemetry=cap.telemetry, from_args={"symbol": lambda arguments: arguments["nope"]})
    def fill(symbol: str) -> str:
        return symbol

    assert fill("BTC") == "BTC"
    assert cap.series("orders.filled") == [({}, 1)]
    assert cap.dropped(reason="extractor_error") == 1


def test_extractor_error_raises_in_strict_mode_only_after_success(strict_cap: Capture) -> None:
    """Strict mode raises a typed error for a failing reader, but never hides the call's own exception."""

    def broken(result: object) -> object:
        raise KeyError("field")

    @counted("orders.filled", telemetry=strict_cap.telemetry, from_result={"symbol": broken})
    def fill(fail: bool) -> int:
        if fail:
            raise ValueError("own error")
        return 1

    with pytest.raises(InvalidValueError, match="extractor_error"):
        fill(False)
    with pytest.raises(ValueError, match="own error"):
        fill(True)


def test_repr_names_the_decorator() -> None:
    """The decorator's repr shows its instrument and static attributes."""
    assert repr(timed("orders.latency", exchange="binance")) == "<timed('orders.latency', exchange='binance')>"
    assert repr(exchange_call(exchange="kraken")) == "<exchange_call(exchange='kraken')>"
