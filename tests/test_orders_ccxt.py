"""instrument_ccxt feeds the order tracker from real ccxt exchanges, offline.

Real ``ccxt.pro`` exchange instances (binance and okx: different status
conventions, ids and fee reporting) and a sync ``ccxt.kraken`` run their own
request building and parsing. Only the network is replaced: ``fetch`` (REST) answers with
recorded responses in each exchange's wire format, and ``watch`` (the
websocket subscription) does what ccxt's own ``watch`` does minus the socket:
it registers the future and the subscription, and the venue's replies and
pushes go through the exchange's own ``handle_message``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ccxt_markets import BINANCE_MARKET  # shared with test_retrofit.py
from tradetel.retrofit import instrument_ccxt
from tradetel.testing import Capture, capture

T0 = 1_700_000_000_000  # the venue's order creation time, ms


class OfflineVenue:
    """The network side of a ccxt.pro exchange: REST answers, websocket replies and pushes."""

    def __init__(self, exchange: Any, rest: Callable[[str, str], Any], reply: Callable[[Any], Any]) -> None:
        self.exchange = exchange
        self.requests: list[tuple[str, str]] = []
        self._rest = rest
        self._reply = reply
        exchange.fetch = self.fetch
        exchange.watch = self.watch

    async def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        path = url.split("?")[0]
        self.requests.append((method, path))
        return self._rest(method, path)

    def watch(
        self, url: str, message_hash: Any, message: Any = None, subscribe_hash: Any = None, subscription: Any = None
    ) -> Any:
        client = self.exchange.client(url)  # a real ccxt client; it is never connected
        if subscribe_hash is None and message_hash in client.futures:
            return client.futures[message_hash]
        future = client.future(message_hash)
        if not client.subscriptions.get(subscribe_hash):
            client.subscriptions[subscribe_hash] = subscription or True
            answer = self._reply(message)
            if answer is not None:
                asyncio.get_running_loop().call_soon(self.exchange.handle_message, client, answer)
        return future

    async def stream(self, url: str, method: Callable[[], Any], push: Any) -> Any:
        """Call a watch_* method and push one websocket message while it waits; its result."""
        task = asyncio.ensure_future(method())
        for _ in range(20):  # authentication and subscription round trips
            await asyncio.sleep(0)
        self.exchange.handle_message(self.exchange.client(url), push)
        return await asyncio.wait_for(task, 5)


@pytest.fixture
def cap() -> Iterator[Capture]:
    with capture() as cap:
        yield cap


def _latencies(cap: Capture) -> dict[tuple[str, str], tuple[int, float]]:
    return {(a["stage"], a["clock"]): (v.count, round(v.sum, 9)) for a, v in cap.series("orders.latency")}


# --- binance: NEW / PARTIALLY_FILLED / FILLED, execution reports on the websocket API -----------------

BINANCE_ORDER: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "orderId": 28,
    "orderListId": -1,
    "clientOrderId": "bot-1",
    "price": "100.00",
    "origQty": "2.00",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
}


def binance_report(status: str, filled: str, quote: str, last: str, price: str, fee: str, trade: int, at: int) -> Any:
    """A spot executionReport as the websocket API pushes it (wrapped in its subscription)."""
    event = {"e": "executionReport", "E": at, "s": "BTCUSDT", "c": "bot-1", "S": "BUY", "o": "LIMIT", "f": "GTC",
             "q": "2.00000000", "p": "100.00", "P": "0", "F": "0", "g": -1, "C": "", "x": "TRADE", "X": status,
             "r": "NONE", "i": 28, "l": last, "z": filled, "L": price, "n": fee, "N": "USDT", "T": at, "t": trade,
             "I": trade, "w": True, "m": True, "M": True, "O": T0, "Z": quote, "Y": "0", "Q": "0"}  # fmt: skip
    return {"subscriptionId": 0, "event": event}


def binance_rest(method: str, path: str) -> Any:
    if path.endswith("/api/v3/order") and method == "POST":
        return {**BINANCE_ORDER, "transactTime": T0, "workingTime": T0, "executedQty": "0.00",
                "cummulativeQuoteQty": "0.00", "status": "NEW", "fills": []}  # fmt: skip
    if path.endswith("/api/v3/order") and method == "GET":
        return {**BINANCE_ORDER, "executedQty": "2.00", "cummulativeQuoteQty": "199.95", "status": "FILLED",
                "time": T0, "updateTime": T0 + 3000, "isWorking": True}  # fmt: skip
    raise AssertionError(f"unexpected request {method} {path}")


def binance_reply(message: Any) -> Any:
    """The websocket API's answer to a subscription request."""
    if isinstance(message, dict) and "id" in message:
        return {"id": message["id"], "status": 200, "result": {"subscriptionId": 0}}
    return None


def test_binance_create_watch_fetch(cap: Capture) -> None:
    """binance: create_order, two partial fills on watch_orders (one twice), fetch_order FILLED: exact metrics."""
    import ccxt.pro

    async def main() -> OfflineVenue:
        exchange = ccxt.pro.binance({"apiKey": "key", "secret": "secret"})
        try:
            exchange.set_markets([BINANCE_MARKET])
            venue = OfflineVenue(exchange, binance_rest, binance_reply)
            instrument_ccxt(exchange, telemetry=cap.telemetry, reference_price=99.95)
            order = await exchange.create_order("BTC/USDT", "limit", "buy", 2, 100)
            assert (order["id"], order["status"]) == ("28", "open")
            assert cap.value("orders.pending") == 1
            url = exchange.urls["api"]["ws"]["ws-api"]["spot"]
            first = binance_report("PARTIALLY_FILLED", "0.5", "49.95", "0.5", "99.9", "0.05", 1, T0 + 1000)
            second = binance_report("PARTIALLY_FILLED", "1.5", "149.95", "1.0", "100.0", "0.1", 2, T0 + 2000)
            assert (await venue.stream(url, exchange.watch_orders, first))[-1]["filled"] == 0.5
            assert (await venue.stream(url, exchange.watch_orders, second))[-1]["filled"] == 1.5
            assert (await venue.stream(url, exchange.watch_orders, second))[-1]["filled"] == 1.5  # pushed twice
            final = await exchange.fetch_order("28", "BTC/USDT")
            assert (final["status"], final["average"]) == ("closed", 99.975)
            return venue
        finally:
            await exchange.close()

    venue = asyncio.run(main())
    assert [method for method, _ in venue.requests] == ["POST", "GET"]
    keys = {"exchange": "binance", "symbol": "BTC/USDT", "side": "buy", "order_type": "limit"}
    for name in ("submitted", "acknowledged", "partially_filled", "filled"):
        assert cap.value(f"orders.{name}", **keys) == 1, name
    assert cap.value("orders.cancelled") + cap.value("orders.rejected") + cap.value("orders.expired") == 0
    assert cap.value("orders.pending") == 0
    latency = _latencies(cap)
    assert latency.pop(("ack", "local"))[0] == 1  # measured on this machine: the count is exact, the time is not
    assert latency == {("fill", "exchange"): (1, 1.0), ("final", "exchange"): (1, 3.0)}
    assert cap.histogram("orders.slippage", reference="limit").sum == pytest.approx((99.975 - 100) / 100 * 1e4)
    assert cap.histogram("orders.slippage", reference="decision").sum == pytest.approx((99.975 - 99.95) / 99.95 * 1e4)
    assert cap.histogram("orders.time_in_book", state="filled", clock="exchange").sum == 3.0
    assert cap.histogram("orders.notional", side="buy").sum == 200.0
    assert cap.series("orders.fees") == []  # fetch_order does not report the last fill's fee: none is guessed
    assert cap.value("exchange.requests", endpoint="create_order", status="ok") == 1
    assert cap.dropped() == 0


# --- okx: partially_filled / canceled, order pushes with cumulative fees ------------------------------

OKX_MARKET: dict[str, Any] = {
    **BINANCE_MARKET,
    "id": "BTC-USDT",
    "settle": None,
    "settleId": None,
    "contractSize": None,
    "info": {"instType": "SPOT", "instId": "BTC-USDT"},
}


def okx_order(state: str, filled: str, average: str, fill: str, fill_price: str, fee: str, trade: str, at: int) -> Any:
    """One order row as okx's orders channel and its order endpoint give it (fees negative: charged)."""
    return {"instType": "SPOT", "instId": "BTC-USDT", "ordId": "777", "clOrdId": "bot2", "tag": "", "px": "100",
            "sz": "2", "ordType": "limit", "side": "sell", "posSide": "", "tdMode": "cash", "fillSz": fill,
            "fillPx": fill_price, "tradeId": trade, "accFillSz": filled, "fillTime": str(at), "fillFee": "-0.01",
            "fillFeeCcy": "USDT", "state": state, "avgPx": average, "feeCcy": "USDT", "fee": fee,
            "rebateCcy": "USDT", "rebate": "0", "pnl": "0", "category": "normal", "uTime": str(at),
            "cTime": str(T0), "code": "0", "msg": ""}  # fmt: skip


def okx_rest(method: str, path: str) -> Any:
    if path.endswith("/trade/batch-orders") and method == "POST":
        return {"code": "0", "msg": "", "data": [{"clOrdId": "bot2", "ordId": "777", "tag": "", "ts": str(T0),
                                                  "sCode": "0", "sMsg": "Order placed"}]}  # fmt: skip
    if path.endswith("/trade/cancel-order"):
        return {"code": "0", "msg": "", "data": [{"clOrdId": "bot2", "ordId": "777", "sCode": "0", "sMsg": ""}]}
    if path.endswith("/trade/order") and method == "GET":
        return {
            "code": "0",
            "msg": "",
            "data": [okx_order("canceled", "1.5", "100.05", "0", "", "-0.03", "", T0 + 3000)],
        }
    raise AssertionError(f"unexpected request {method} {path}")


def okx_reply(message: Any) -> Any:
    if isinstance(message, dict) and message.get("op") == "login":
        return {"event": "login", "code": "0", "msg": "", "connId": "offline"}
    return None


def test_okx_create_watch_cancel_fetch(cap: Capture) -> None:
    """okx: create_order (no status), a partial fill on watch_orders, cancel, fetch_order canceled: exact metrics."""
    import ccxt.pro

    async def main() -> None:
        exchange = ccxt.pro.okx({"apiKey": "key", "secret": "secret", "password": "pass"})
        try:
            exchange.set_markets([OKX_MARKET])
            venue = OfflineVenue(exchange, okx_rest, okx_reply)
            instrument_ccxt(exchange, telemetry=cap.telemetry)
            order = await exchange.create_order("BTC/USDT", "limit", "sell", 2, 100, {"clOrdId": "bot2"})
            assert (order["id"], order["status"]) == ("777", None)
            assert cap.value("orders.acknowledged") == 0  # okx answers a placement without a status
            row = okx_order("partially_filled", "0.5", "100.1", "0.5", "100.1", "-0.01", "1", T0 + 1000)
            push = {"arg": {"channel": "orders", "instType": "ANY", "uid": "1"}, "data": [row]}
            url = exchange.get_url("users", "private")
            assert (await venue.stream(url, exchange.watch_orders, push))[-1]["filled"] == 0.5
            await exchange.cancel_order("777", "BTC/USDT")
            final = await exchange.fetch_order("777", "BTC/USDT")
            assert (final["status"], final["filled"], final["fee"]["cost"]) == ("canceled", 1.5, 0.03)
            assert [path.rsplit("/", 1)[1] for _, path in venue.requests] == ["batch-orders", "cancel-order", "order"]
        finally:
            await exchange.close()

    asyncio.run(main())
    keys = {"exchange": "okx", "symbol": "BTC/USDT", "side": "sell", "order_type": "limit"}
    for name in ("submitted", "acknowledged", "partially_filled", "cancelled"):
        assert cap.value(f"orders.{name}", **keys) == 1, name
    assert cap.value("orders.filled") == 0
    assert cap.value("orders.pending") == 0
    latency = _latencies(cap)
    assert latency.pop(("ack", "local"))[0] == 1
    assert latency.pop(("cancel", "local"))[0] == 1
    assert latency == {("fill", "exchange"): (1, 1.0), ("final", "exchange"): (1, 3.0)}
    assert cap.histogram("orders.fill_ratio", state="cancelled").sum == 0.75
    assert cap.histogram("orders.slippage", reference="limit").sum == pytest.approx(-(100.05 - 100) / 100 * 1e4)
    assert cap.histogram("orders.slippage", reference="decision").count == 0  # no decision price was given
    assert cap.value("orders.fees", exchange="okx") == pytest.approx(0.03)
    assert cap.dropped() == 0


# --- kraken (sync ccxt): a placement answered with its txid only, then polled -------------------------

KRAKEN_MARKET: dict[str, Any] = {
    **BINANCE_MARKET,
    "id": "XXBTZUSD",
    "symbol": "BTC/USD",
    "quote": "USD",
    "baseId": "XXBT",
    "quoteId": "ZUSD",
    "altname": "XBTUSD",
    "info": {"altname": "XBTUSD", "wsname": "XBT/USD", "base": "XXBT", "quote": "ZUSD"},
}
KRAKEN_TXID = "OUF4EM-FRGI2-MQMWZD"


def kraken_order(status: str, filled: str, cost: str, fee: str, average: str, closed: float | None) -> Any:
    """One entry of QueryOrders, as kraken answers it (times in epoch seconds)."""
    order = {"refid": None, "userref": 0, "status": status, "opentm": T0 / 1000, "starttm": 0, "expiretm": 0,
             "descr": {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "100.0", "price2": "0",
                       "leverage": "none", "order": "buy 2.00000000 XBTUSD @ limit 100.0", "close": ""},
             "vol": "2.00000000", "vol_exec": filled, "cost": cost, "fee": fee, "price": average,
             "stopprice": "0", "limitprice": "0", "misc": "", "oflags": "fciq"}  # fmt: skip
    if closed is not None:
        order["closetm"] = closed
    return {"error": [], "result": {KRAKEN_TXID: order}}


def test_kraken_sync_create_poll_and_refusal(cap: Capture) -> None:
    """kraken, sync: an id-only placement, two polls (open partial, closed), a refused order: exact metrics."""
    import ccxt

    answers = [
        kraken_order("open", "0.50000000", "49.95", "0.10", "99.9", None),
        kraken_order("closed", "2.00000000", "199.95", "0.40", "99.975", T0 / 1000 + 3),
    ]

    def offline_fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        if url.endswith("/AddOrder"):
            if "volume=900" in str(body):
                # what kraken's own error handling raises for {"error": ["EOrder:Insufficient funds"]}
                raise ccxt.InsufficientFunds("kraken EOrder:Insufficient funds")
            return {"error": [], "result": {"descr": {"order": "buy 2 XBTUSD @ limit 100.0"}, "txid": [KRAKEN_TXID]}}
        if url.endswith("/QueryOrders"):
            return answers.pop(0)
        raise AssertionError(f"unexpected request {method} {url}")

    exchange = ccxt.kraken({"apiKey": "key", "secret": "c2VjcmV0"})
    exchange.set_markets([KRAKEN_MARKET])
    exchange.options["marketsByAltname"] = {"XBTUSD": exchange.markets["BTC/USD"]}  # as load_markets indexes them
    exchange.fetch = offline_fetch
    instrument_ccxt(exchange, telemetry=cap.telemetry)
    assert exchange.create_order("BTC/USD", "limit", "buy", 2, 100)["status"] is None
    assert cap.value("orders.pending") == 1
    with pytest.raises(ccxt.InsufficientFunds):
        exchange.create_order("BTC/USD", "limit", "buy", 900, 100)
    assert exchange.fetch_order(KRAKEN_TXID, "BTC/USD")["status"] == "open"
    assert exchange.fetch_order(KRAKEN_TXID, "BTC/USD")["status"] == "closed"
    keys = {"exchange": "kraken", "symbol": "BTC/USD", "side": "buy", "order_type": "limit"}
    assert cap.value("orders.submitted", **keys) == 2
    for name in ("acknowledged", "partially_filled", "filled"):
        assert cap.value(f"orders.{name}", **keys) == 1, name
    assert cap.value("orders.rejected", reason="insufficient_funds", **keys) == 1
    assert cap.value("orders.pending") == 0
    latency = _latencies(cap)
    assert latency.pop(("ack", "local"))[0] == 1
    assert latency.pop(("fill", "local"))[0] == 1  # a poll shows the fill without its time
    assert latency.pop(("final", "local"))[0] == 1  # the refused order
    assert latency == {("final", "exchange"): (1, 3.0)}
    assert cap.histogram("orders.slippage", reference="limit").sum == pytest.approx(-2.5)
    assert cap.value("orders.fees", exchange="kraken") == pytest.approx(0.4)
    assert cap.value("exchange.requests", endpoint="create_order", status="error") == 1
    assert cap.value("exchange.requests", endpoint="fetch_order", status="ok") == 2
    assert cap.dropped() == 0
