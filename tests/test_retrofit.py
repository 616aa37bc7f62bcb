"""Retrofitting: wrapping methods of existing objects and classes, and a ccxt exchange, then undoing it.

The ccxt tests use a small class shaped like a ccxt exchange (our own logic
under test) and a real ``ccxt.binance`` instance whose HTTP method ``fetch``
is replaced, so that ccxt's own request building and order parsing run and
no request leaves the machine.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ccxt_markets import BINANCE_MARKET  # shared with test_orders_ccxt.py
from tradetel.decorators import counted, exchange_call, strategy_stage, timed
from tradetel.errors import ConfigurationError
from tradetel.retrofit import instrument_ccxt, instrument_methods
from tradetel.testing import Capture

# --- instrument_methods -----------------------------------------------------------------------------


class Bot:
    """A bot whose source we pretend not to own."""

    runs = 0

    def __init__(self, name: str) -> None:
        self.name = name

    def step(self, symbol: str) -> str:
        """One step."""
        return f"{self.name}:{symbol}"

    @classmethod
    def create(cls, name: str) -> Bot:
        return cls(name)

    @staticmethod
    def spread(bid: float, ask: float) -> float:
        return ask - bid


class QuietBot(Bot):
    pass


def test_instance_methods_are_wrapped_and_restored(cap: Capture) -> None:
    """Wrapping an instance changes only that instance, records its calls, and undo() removes every trace."""
    bot, other = Bot("a"), Bot("b")
    handle = instrument_methods(bot, {"step": counted("orders.filled", telemetry=cap.telemetry, from_args=SYMBOL)})
    assert handle.methods == ("step",)
    assert bot.step("BTC") == "a:BTC"
    assert bot.step.__doc__ == "One step."
    assert other.step("BTC") == "b:BTC"
    assert cap.series("orders.filled") == [({"symbol": "BTC"}, 1)]
    handle.undo()
    handle.undo()
    assert "step" not in vars(bot)
    bot.step("BTC")
    assert cap.value("orders.filled") == 1


SYMBOL = {"symbol": "symbol"}


def test_class_methods_keep_their_kind_and_are_restored(cap: Capture) -> None:
    """On a class, methods, classmethods and staticmethods keep their binding; undo puts back the same objects."""
    originals = {name: Bot.__dict__[name] for name in ("step", "create", "spread")}
    stage = strategy_stage(telemetry=cap.telemetry, strategy="grid")
    with instrument_methods(Bot, {"step": stage, "create": stage, "spread": stage}):
        assert isinstance(Bot.__dict__["create"], classmethod)
        assert isinstance(Bot.__dict__["spread"], staticmethod)
        bot = Bot.create("c")
        assert type(bot) is Bot
        assert bot.step("ETH") == "c:ETH"
        assert Bot.spread(1.0, 1.5) == 0.5
        assert QuietBot("q").step("X") == "q:X"  # subclasses see the wrapped method
    assert {name: Bot.__dict__[name] for name in originals} == originals
    stages = {a["stage"]: v.count for a, v in cap.series("strategy.stage.duration")}
    assert stages == {"create": 1, "step": 2, "spread": 1}


def test_inherited_method_is_wrapped_on_the_subclass_only(cap: Capture) -> None:
    """A method inherited from a base class is wrapped on the subclass and removed again by undo()."""
    handle = instrument_methods(QuietBot, {"step": timed("orders.latency", telemetry=cap.telemetry)})
    QuietBot("q").step("X")
    Bot("b").step("X")
    assert cap.histogram("orders.latency").count == 1
    handle.undo()
    assert "step" not in QuietBot.__dict__


def test_several_decorators_per_method(cap: Capture) -> None:
    """A list of decorators is applied innermost first, all recording."""
    client = Bot("x")
    instrument_methods(
        client,
        {
            "step": [
                exchange_call(telemetry=cap.telemetry, exchange="kraken"),
                counted("orders.filled", telemetry=cap.telemetry),
            ]
        },
    )
    client.step("BTC")
    assert cap.value("exchange.requests", endpoint="step", status="ok") == 1
    assert cap.value("orders.filled") == 1


def test_unknown_method_replaces_nothing(cap: Capture) -> None:
    """A name that is not a method raises ConfigurationError before anything is replaced."""
    bot = Bot("a")
    decorate = counted("orders.filled", telemetry=cap.telemetry)
    with pytest.raises(ConfigurationError, match="a method of Bot") as raised:
        instrument_methods(bot, {"step": decorate, "stpe": decorate})
    assert raised.value.setting == "instrument_methods['stpe']"
    assert "step" not in vars(bot)
    with pytest.raises(ConfigurationError):
        instrument_methods(bot, {"name": decorate})  # an attribute, not a method


def test_slotted_instance_is_refused(cap: Capture) -> None:
    """An object without settable attributes cannot be instrumented per instance; the error says to use its class."""

    class Slotted:
        __slots__ = ()

        def step(self) -> None:
            pass

    with pytest.raises(ConfigurationError, match="instrument its class"):
        instrument_methods(Slotted(), {"step": counted("orders.filled", telemetry=cap.telemetry)})


# --- instrument_ccxt on an exchange-shaped class -----------------------------------------------------


class InsufficientFunds(Exception):  # noqa: N818 - ccxt's name
    pass


class RequestTimeout(Exception):  # noqa: N818 - ccxt's name
    pass


class FakeExchange:
    """The shape of a ccxt exchange: unified methods calling each other, camelCase aliases, a raw fetch."""

    id = "fakex"

    def __init__(self) -> None:
        self.http: list[str] = []

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> dict[str, Any]:
        self.http.append(url)
        return {}

    def create_order(
        self,
        symbol: str,
        type: str,  # noqa: A002 - ccxt's parameter name
        side: str,
        amount: float,
        price: float | None = None,
        params: Any = None,
    ) -> dict[str, Any]:
        self.fetch("/order", "POST")
        if amount > 100:
            raise InsufficientFunds("fakex Account has insufficient balance for requested action")
        average = price * 1.001 if price else 100.0
        return {
            "id": "1",
            "status": "closed",
            "symbol": symbol,
            "type": type,
            "side": side,
            "amount": amount,
            "filled": amount,
            "average": average,
            "price": price,
        }

    createOrder = create_order  # noqa: N815 - ccxt's alias

    def create_market_buy_order(self, symbol: str, amount: float, params: Any = None) -> dict[str, Any]:
        return self.create_order(symbol, "market", "buy", amount, None, params)

    def cancel_order(self, id: str, symbol: str | None = None, params: Any = None) -> dict[str, Any]:  # noqa: A002
        return {"id": id, "status": "canceled", "symbol": symbol, "side": "sell", "type": "limit"}

    def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        self.fetch("/depth")
        return {"bids": [[99.0, 1.0]], "asks": [[101.0, 1.0]]}

    def fetch_l2_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        return self.fetch_order_book(symbol, limit)

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        if symbol == "DOWN/USDT":
            raise RequestTimeout("fakex GET /ticker timed out")
        return {"symbol": symbol, "bid": 99.0, "ask": 101.0}

    fetchTicker = fetch_ticker  # noqa: N815 - ccxt's alias


def test_ccxt_orders_and_exchange_calls(cap: Capture) -> None:
    """Per call (orders=False): create_order records the order instruments and the exchange call; failures count."""
    exchange = FakeExchange()
    instrument_ccxt(exchange, telemetry=cap.telemetry, orders=False)
    order = exchange.create_order("BTC/USDT", "limit", "buy", 2.0, 100.0)
    assert order["status"] == "closed"
    with pytest.raises(InsufficientFunds):
        exchange.createOrder("BTC/USDT", "limit", "sell", 500.0, 100.0)
    order_keys = {"exchange": "fakex", "symbol": "BTC/USDT", "order_type": "limit"}
    assert cap.value("orders.submitted", **order_keys) == 2
    assert cap.value("orders.filled", side="buy", **order_keys) == 1
    assert cap.value("orders.rejected", side="sell", reason="insufficient_funds", **order_keys) == 1
    assert cap.histogram("orders.slippage", side="buy").sum == pytest.approx(10.0)  # 0.1 % above the limit price
    assert cap.histogram("orders.notional", side="buy").sum == pytest.approx(2 * 100.1)
    assert cap.value("exchange.requests", exchange="fakex", endpoint="create_order", status="ok") == 1
    assert cap.value("exchange.requests", exchange="fakex", endpoint="create_order", status="error") == 1
    assert cap.value("exchange.error_streak", exchange="fakex") == 1
    exchange.cancel_order("1", "BTC/USDT")
    assert cap.value("orders.cancelled", exchange="fakex", symbol="BTC/USDT", side="sell", order_type="limit") == 1
    assert cap.value("exchange.requests", endpoint="cancel_order", status="ok") == 1
    assert cap.value("exchange.error_streak", exchange="fakex") == 0


def test_ccxt_fetch_methods_and_nesting(cap: Capture) -> None:
    """Every fetch_* is an exchange call; calls made inside another instrumented call are not counted again."""
    exchange = FakeExchange()
    instrument_ccxt(exchange, telemetry=cap.telemetry)
    exchange.fetch_l2_order_book("BTC/USDT")
    exchange.fetchTicker("BTC/USDT")
    with pytest.raises(RequestTimeout):
        exchange.fetch_ticker("DOWN/USDT")
    exchange.create_market_buy_order("ETH/USDT", 1.0)
    endpoints = {(a["endpoint"], a["status"]): v for a, v in cap.series("exchange.requests")}
    assert endpoints == {
        ("fetch_l2_order_book", "ok"): 1,
        ("fetch_ticker", "ok"): 1,
        ("fetch_ticker", "error"): 1,
        ("create_order", "ok"): 1,
    }
    assert cap.value("exchange.errors", endpoint="fetch_ticker", error_type="timeout") == 1
    assert cap.value("orders.submitted", symbol="ETH/USDT", side="buy", order_type="market") == 1
    assert exchange.http == ["/depth", "/order"]  # the raw HTTP method is left alone


def test_ccxt_selected_fetch_methods_and_undo(cap: Capture) -> None:
    """fetch= limits the wrapped fetch_* methods; undo() restores the exchange completely."""
    exchange = FakeExchange()
    handle = instrument_ccxt(exchange, telemetry=cap.telemetry, fetch=["fetch_ticker"], exchange="fakex-sub1")
    assert set(handle.methods) == {"create_order", "createOrder", "cancel_order", "fetch_ticker", "fetchTicker"}
    exchange.fetch_order_book("BTC/USDT")
    exchange.fetch_ticker("BTC/USDT")
    assert cap.series("exchange.requests") == [
        ({"exchange": "fakex-sub1", "endpoint": "fetch_ticker", "status": "ok"}, 1)
    ]
    handle.undo()
    assert vars(exchange) == {"http": ["/depth"]}
    exchange.fetch_ticker("BTC/USDT")
    assert cap.value("exchange.requests") == 1


def test_ccxt_unknown_attribute_is_a_configuration_error(cap: Capture) -> None:
    """Attributes the exchange instruments do not accept are refused when instrumenting, not at the first order."""
    with pytest.raises(ConfigurationError):
        instrument_ccxt(FakeExchange(), telemetry=cap.telemetry, strategy="grid")


class AsyncFakeExchange:
    """The shape of a ccxt.async_support exchange."""

    id = "asyncx"

    async def create_order(
        self,
        symbol: str,
        type: str,  # noqa: A002 - ccxt's parameter name
        side: str,
        amount: float,
        price: float | None = None,
        params: Any = None,
    ) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"status": "open", "symbol": symbol, "type": type, "side": side, "amount": amount, "filled": 0.0}

    async def fetch_balance(self) -> dict[str, Any]:
        return {"USDT": {"free": 10.0}}

    async def fetch_total_balance(self) -> dict[str, Any]:
        return {"USDT": (await self.fetch_balance())["USDT"]["free"]}


def test_ccxt_async_exchange(cap: Capture) -> None:
    """An async exchange keeps coroutine methods and records them, nested calls counted once."""
    exchange = AsyncFakeExchange()
    instrument_ccxt(exchange, telemetry=cap.telemetry)
    assert asyncio.iscoroutinefunction(exchange.create_order)

    async def main() -> None:
        await asyncio.gather(
            exchange.create_order("BTC/USDT", "limit", "buy", 1.0, 50.0), exchange.fetch_total_balance()
        )

    asyncio.run(main())
    assert cap.value("orders.submitted", exchange="asyncx") == 1
    assert cap.value("orders.filled") + cap.value("orders.partially_filled") == 0  # resting order
    assert {a["endpoint"] for a, _ in cap.series("exchange.requests")} == {"create_order", "fetch_total_balance"}


# --- a real ccxt exchange, network replaced ---------------------------------------------------------

BINANCE_FILL = {
    "symbol": "BTCUSDT",
    "orderId": 28,
    "clientOrderId": "abc",
    "transactTime": 1507725176595,
    "price": "100.00",
    "origQty": "2.00000",
    "executedQty": "2.00000",
    "cummulativeQuoteQty": "200.20",
    "status": "FILLED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "fills": [{"price": "100.10", "qty": "2.0", "commission": "0.001", "commissionAsset": "BTC"}],
}


def test_real_ccxt_exchange_offline(cap: Capture) -> None:
    """A real ccxt.binance instance parses its own responses into unified orders that tradetel records per call."""
    import ccxt

    exchange = ccxt.binance({"apiKey": "key", "secret": "secret"})
    exchange.set_markets([BINANCE_MARKET])
    requests: list[tuple[str, str]] = []

    def offline_fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        requests.append((method, url.split("?")[0]))
        if "/ticker/" in url:
            if "ETHUSDT" in url:
                raise ccxt.RateLimitExceeded("binance 429 Too Many Requests")
            return {"symbol": "BTCUSDT", "bidPrice": "99.9", "askPrice": "100.1", "lastPrice": "100.0"}
        if "/order" in url and "EXPENSIVE" not in url:
            if "quantity=900" in str(body):
                raise ccxt.InsufficientFunds("binance Account has insufficient balance for requested action.")
            return BINANCE_FILL
        raise AssertionError(f"unexpected request {method} {url}")

    exchange.fetch = offline_fetch
    handle = instrument_ccxt(exchange, telemetry=cap.telemetry, orders=False)
    order = exchange.create_order("BTC/USDT", "limit", "buy", 2, 100)
    assert (order["status"], order["average"]) == ("closed", 100.1)
    with pytest.raises(ccxt.InsufficientFunds):
        exchange.createOrder("BTC/USDT", "limit", "buy", 900, 100)
    assert exchange.fetch_ticker("BTC/USDT")["bid"] == 99.9
    exchange.set_markets([BINANCE_MARKET, {**BINANCE_MARKET, "id": "ETHUSDT", "symbol": "ETH/USDT", "base": "ETH"}])
    with pytest.raises(ccxt.RateLimitExceeded):
        exchange.fetchTicker("ETH/USDT")

    keys = {"exchange": "binance", "symbol": "BTC/USDT", "side": "buy", "order_type": "limit"}
    assert cap.value("orders.submitted", **keys) == 2
    assert cap.value("orders.filled", **keys) == 1
    assert cap.value("orders.rejected", reason="insufficient_funds", **keys) == 1
    assert cap.histogram("orders.slippage", symbol="BTC/USDT", side="buy").sum == pytest.approx(10.0)
    assert cap.histogram("orders.notional", symbol="BTC/USDT").sum == pytest.approx(200.2)
    assert cap.value("exchange.errors", endpoint="fetch_ticker", error_type="rate_limit") == 1
    assert cap.value("exchange.errors", endpoint="create_order") == 1
    assert cap.value("exchange.requests", status="ok") == 2
    assert cap.value("exchange.error_streak", exchange="binance") == 1
    assert [method for method, _ in requests] == ["POST", "POST", "GET", "GET"]
    handle.undo()
    assert "create_order" not in vars(exchange)
    assert "fetchTicker" not in vars(exchange)


def test_real_ccxt_async_exchange_offline(cap: Capture) -> None:
    """A real ccxt.async_support exchange keeps its coroutine methods and records the same values."""
    import ccxt.async_support as ccxt_async

    async def main() -> None:
        exchange = ccxt_async.binance({"apiKey": "key", "secret": "secret"})
        try:
            exchange.set_markets([BINANCE_MARKET])

            async def offline_fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
                return BINANCE_FILL

            exchange.fetch = offline_fetch
            instrument_ccxt(exchange, telemetry=cap.telemetry, fetch=False)
            order = await exchange.create_order("BTC/USDT", "limit", "buy", 2, 100)
            assert order["filled"] == 2.0
        finally:
            await exchange.close()

    asyncio.run(main())
    assert cap.value("orders.filled", exchange="binance", symbol="BTC/USDT", side="buy") == 1
    assert cap.value("exchange.requests", endpoint="create_order", status="ok") == 1


# --- one handle for several targets -------------------------------------------------------------------------


class _Feed:
    def fetch(self) -> str:
        return "feed"


class _Router:
    def fetch(self) -> str:
        return "router"


def test_into_a_handle_of_another_class_wraps_that_class(cap: Capture) -> None:
    """instrument_methods(B, into=handle_of_A) wraps B's method on B, leaves A's alone, and undo restores both."""
    feed_fetch, router_fetch = _Feed.fetch, _Router.fetch
    handle = instrument_methods(
        _Feed, {"fetch": exchange_call(exchange="binance", endpoint="feed", telemetry=cap.telemetry)}
    )
    instrument_methods(
        _Router, {"fetch": exchange_call(exchange="kraken", endpoint="router", telemetry=cap.telemetry)}, into=handle
    )
    try:
        assert _Feed().fetch() == "feed"
        assert _Router().fetch() == "router"
        assert cap.value("exchange.requests", exchange="binance", endpoint="feed") == 1
        assert cap.value("exchange.requests", exchange="kraken", endpoint="router") == 1
        assert repr(handle) == "<Instrumented _Feed methods=['fetch'], _Router methods=['fetch']>"
    finally:
        handle.undo()
    assert _Feed.fetch is feed_fetch
    assert _Router.fetch is router_fetch
    assert "fetch" not in vars(_Feed) or vars(_Feed)["fetch"] is feed_fetch


def test_repr_names_the_instrumented_class_or_instance_type() -> None:
    """The repr of a handle names the class it instrumented (not ``type``), or the type of the instance."""
    with instrument_methods(_Feed, {"fetch": counted("orders.filled")}) as handle:
        assert repr(handle) == "<Instrumented _Feed methods=['fetch']>"
    feed = _Feed()
    with instrument_methods(feed, {"fetch": counted("orders.filled")}) as handle:
        assert repr(handle) == "<Instrumented _Feed methods=['fetch']>"


def test_into_must_be_a_handle() -> None:
    """into= of anything but an Instrumented is a configuration error naming the setting."""
    with pytest.raises(ConfigurationError, match=r"instrument_methods\(into=\.\.\.\)"):
        instrument_methods(_Feed, {"fetch": counted("orders.filled")}, into=object())  # type: ignore[arg-type]
    assert "fetch" in vars(_Feed) and not hasattr(_Feed.fetch, "__tradetel__")
