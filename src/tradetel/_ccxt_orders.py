"""What each unified ccxt method tells the order tracker; used by :func:`tradetel.instrument_ccxt`.

Each feed wraps one method of a ccxt exchange instance (sync, ``async_support``
or ``ccxt.pro``) and hands what the call returned to the
:class:`~tradetel.orders.OrderTracker`, after the call and outside its
timing. A feed never changes a result or an exception, and a failing feed
is counted, never raised (strict mode aside):

- ``create_order`` opens the order with the call's arguments (its submit
  time taken before the request) and applies the returned order; a refusal
  by the exchange (any error but a ``NetworkError``, whose outcome is
  unknown) ends it ``rejected`` with the error folded to a reason.
  ``create_*_order`` variants go through ``create_order``;
  ``create_reduce_only_order`` marks the order's intent ``reduce``, as does
  ``params={"reduceOnly": True}``; ``create_orders`` opens each order of the batch.
- ``cancel_order``/``cancel_orders`` mark the cancel request, then apply the answer.
- ``edit_order``: a new exchange id is a replacement of the same order.
- ``fetch_order``, ``fetch_open_orders``, ``watch_orders``: each order is
  applied; an open one the tracker does not know is adopted.
- ``fetch_orders``, ``fetch_closed_orders``, ``fetch_canceled_orders``...
  (history): orders the tracker knows are applied, others left alone.
- ``fetch_my_trades``, ``fetch_order_trades``, ``watch_my_trades``: each trade is a fill.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from itertools import count
from typing import TYPE_CHECKING, Any

from ._extractors import error_text, number

if TYPE_CHECKING:
    from ._lifecycle import OrderTracker

__all__ = ["ORDER_FEEDS", "feeds"]

TrackerOf = Callable[[], "OrderTracker | None"]

_INTENT: ContextVar[str | None] = ContextVar("tradetel_ccxt_intent", default=None)
_TOKENS = count(1)

_OPEN_READS = ("fetch_order", "fetch_open_order", "fetch_open_orders", "watch_orders", "watch_orders_for_symbols")
_HISTORY_READS = (
    "fetch_orders",
    "fetch_closed_orders",
    "fetch_canceled_orders",
    "fetch_canceled_and_closed_orders",
)
_TRADE_READS = ("fetch_my_trades", "fetch_order_trades", "watch_my_trades", "watch_my_trades_for_symbols")
_HISTORY_TRADES = ("fetch_my_trades", "fetch_order_trades")

ORDER_FEEDS = (
    "create_order",
    "create_orders",
    "create_reduce_only_order",
    "cancel_order",
    "cancel_orders",
    "edit_order",
    *_OPEN_READS,
    *_HISTORY_READS,
    *_TRADE_READS,
)
"""The methods a feed is installed on, when the exchange has them."""


def feeds(
    exchange: object, tracker_of: TrackerOf, name: str, reference_price: object
) -> dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """Method name → a wrapper that feeds the tracker from calls of that method, for the methods ``exchange`` has."""
    makers: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {}
    for method in ORDER_FEEDS:
        if not callable(getattr(exchange, method, None)):
            continue
        if method == "create_order":
            makers[method] = functools.partial(_create, tracker_of=tracker_of, name=name, reference=reference_price)
        elif method == "create_orders":
            makers[method] = functools.partial(_after, on_result=_batch(tracker_of, name))
        elif method == "create_reduce_only_order":
            makers[method] = _reduce_only
        elif method in ("cancel_order", "cancel_orders"):
            makers[method] = functools.partial(_cancel, tracker_of=tracker_of, name=name)
        elif method == "edit_order":
            makers[method] = functools.partial(_edit, tracker_of=tracker_of, name=name)
        elif method in _TRADE_READS:
            known_only = method in _HISTORY_TRADES
            makers[method] = functools.partial(_after, on_result=_trades(tracker_of, known_only))
        else:
            known_only = method in _HISTORY_READS
            makers[method] = functools.partial(_after, on_result=_orders(tracker_of, name, known_only))
    return makers


# --- the wrapping ---------------------------------------------------------------------------------


def _wrap(
    original: Callable[..., Any],
    before: Callable[[tuple[Any, ...], dict[str, Any]], Any] | None,
    after: Callable[[Any, tuple[Any, ...], dict[str, Any], Any], None] | None,
    failed: Callable[[BaseException, tuple[Any, ...], dict[str, Any], Any], None] | None = None,
) -> Callable[..., Any]:
    """Call ``before`` ahead of ``original`` and ``after``/``failed`` once it returned or raised."""
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            state = before(args, kwargs) if before is not None else None
            try:
                result = await original(*args, **kwargs)
            except Exception as error:
                if failed is not None:
                    failed(error, args, kwargs, state)
                raise
            if after is not None:
                after(result, args, kwargs, state)
            return result

        return run_async

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        state = before(args, kwargs) if before is not None else None
        try:
            result = original(*args, **kwargs)
        except Exception as error:
            if failed is not None:
                failed(error, args, kwargs, state)
            raise
        if after is not None:
            after(result, args, kwargs, state)
        return result

    return run


def _after(original: Callable[..., Any], *, on_result: Callable[[Any], None]) -> Callable[..., Any]:
    return _wrap(original, None, lambda result, args, kwargs, state: on_result(result))


def _argument(
    signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any], name: str, index: int
) -> Any:
    """A ccxt argument by name, else by its position in ccxt's unified signature."""
    if name in kwargs:
        return kwargs[name]
    if signature is not None:
        try:
            return signature.bind_partial(*args, **kwargs).arguments.get(name)
        except TypeError:
            pass
    return args[index] if index < len(args) else None


def _signature(original: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(original)
    except (TypeError, ValueError):
        return None


# --- create, cancel, edit -------------------------------------------------------------------------

_CREATE_ARGS = ("symbol", "type", "side", "amount", "price", "params")


def _create(original: Callable[..., Any], *, tracker_of: TrackerOf, name: str, reference: object) -> Callable[..., Any]:
    signature = _signature(original)

    def read(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        call = {key: _argument(signature, args, kwargs, key, i) for i, key in enumerate(_CREATE_ARGS)}
        call["submitted_at"] = time.monotonic()
        call["intent"] = _INTENT.get()
        return call

    def opened(result: Any, args: tuple[Any, ...], kwargs: dict[str, Any], call: dict[str, Any]) -> None:
        tracker = tracker_of()
        if tracker is None:
            return
        order = result if isinstance(result, Mapping) else {}
        client_id = order.get("clientOrderId") or _client_id(call["params"])
        exchange_id = order.get("id")
        if client_id is None and exchange_id is None:
            client_id = f"tradetel-{next(_TOKENS)}"  # an answer without ids: followed until it ends or ages out
        _open(tracker, name, call, order, reference, client_id, exchange_id)
        if order:
            if order.get("clientOrderId") is None:
                order = {**order, "clientOrderId": client_id}
            tracker.update(order, exchange=name)

    def refused(error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any], call: dict[str, Any]) -> None:
        if any(kind.__name__ == "NetworkError" for kind in type(error).__mro__):
            return  # timeout, connection reset: the order may exist; its first update adopts it
        tracker = tracker_of()
        if tracker is None:
            return
        token = f"tradetel-{next(_TOKENS)}"
        _open(tracker, name, call, {}, reference, token, None)
        tracker.rejected(token, error_text(error))

    return _wrap(original, read, opened, refused)


def _open(
    tracker: OrderTracker,
    name: str,
    call: Mapping[str, Any],
    order: Mapping[str, Any],
    reference: object,
    client_id: object,
    exchange_id: object,
) -> None:
    params = call["params"] if isinstance(call["params"], Mapping) else {}
    intent = call["intent"] or ("reduce" if params.get("reduceOnly") is True else None)
    amount: Any = call["amount"] if call["amount"] is not None else order.get("amount")  # None: counted by open()
    symbol: Any = call["symbol"] or order.get("symbol")
    side: Any = call["side"] or order.get("side")
    tracker.open(
        client_id,
        exchange_id,
        exchange=name,
        symbol=symbol,
        side=side,
        amount=amount,
        order_type=call["type"] or order.get("type") or "limit",
        price=number(call["price"]),
        decision_price=_reference(reference, call, params, order),
        intent=intent,
        time_in_force=params.get("timeInForce") or order.get("timeInForce"),
        submitted_at=call["submitted_at"],
    )


def _reference(reference: object, call: Mapping[str, Any], params: Mapping[str, Any], order: Mapping[str, Any]) -> Any:
    """The decision price named by ``reference_price``; the limit price is measured as such, not as a decision."""
    if reference is None or reference == "price":
        return None
    if isinstance(reference, int | float):
        return reference
    if isinstance(reference, str):
        head, _, rest = reference.partition(".")
        source: Any = params if head == "params" else call.get(head)
        for part in rest.split(".") if rest else ():
            source = source.get(part) if isinstance(source, Mapping) else None
        return number(source)
    if callable(reference):
        try:
            return number(reference(order))
        except Exception:
            return None
    return None


def _client_id(params: object) -> Any:
    if isinstance(params, Mapping):
        return params.get("clientOrderId") or params.get("newClientOrderId") or params.get("clOrdId")
    return None


def _reduce_only(original: Callable[..., Any]) -> Callable[..., Any]:
    def mark(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return _INTENT.set("reduce")

    def unmark(result: Any, args: tuple[Any, ...], kwargs: dict[str, Any], token: Any) -> None:
        _INTENT.reset(token)

    def unmark_failed(error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any], token: Any) -> None:
        _INTENT.reset(token)

    return _wrap(original, mark, unmark, unmark_failed)


def _batch(tracker_of: TrackerOf, name: str) -> Callable[[Any], None]:
    def opened(result: Any) -> None:
        tracker = tracker_of()
        if tracker is None or not isinstance(result, list):
            return
        for order in result:
            if not isinstance(order, Mapping) or order.get("id") is None:
                continue
            call: dict[str, Any] = {
                "symbol": order.get("symbol"),
                "type": order.get("type"),
                "side": order.get("side"),
                "amount": order.get("amount"),
                "price": order.get("price"),
                "params": {},
                "intent": _INTENT.get(),
                "submitted_at": None,
            }
            _open(tracker, name, call, order, None, order.get("clientOrderId"), order.get("id"))
            tracker.update(order, exchange=name)

    return opened


def _cancel(original: Callable[..., Any], *, tracker_of: TrackerOf, name: str) -> Callable[..., Any]:
    signature = _signature(original)

    def ids(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        first = _argument(signature, args, kwargs, "id", 0)
        if first is None:
            first = _argument(signature, args, kwargs, "ids", 0)
        found = list(first) if isinstance(first, list | tuple) else [first]
        tracker = tracker_of()
        if tracker is not None:
            for order_id in found:
                if order_id is not None:
                    tracker.cancel_requested(order_id)
        return found

    def answered(result: Any, args: tuple[Any, ...], kwargs: dict[str, Any], found: list[Any]) -> None:
        tracker = tracker_of()
        if tracker is None:
            return
        answers = result if isinstance(result, list) else [result]
        for order_id, order in zip(found, answers, strict=False):
            if isinstance(order, Mapping) and order.get("status") is not None:
                tracker.update({**order, "id": order.get("id") or order_id}, exchange=name, known_only=True)

    return _wrap(original, ids, answered)


def _edit(original: Callable[..., Any], *, tracker_of: TrackerOf, name: str) -> Callable[..., Any]:
    signature = _signature(original)

    def read(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
        return (
            _argument(signature, args, kwargs, "id", 0),
            _argument(signature, args, kwargs, "amount", 4),
            _argument(signature, args, kwargs, "price", 5),
        )

    def edited(result: Any, args: tuple[Any, ...], kwargs: dict[str, Any], call: tuple[Any, Any, Any]) -> None:
        tracker = tracker_of()
        if tracker is None or not isinstance(result, Mapping):
            return
        old, amount, price = call
        new = result.get("id")
        if new is not None and old is not None and str(new) != str(old):
            tracker.replaced(old, new, amount=number(amount), price=number(price))
        tracker.update(result, exchange=name, known_only=True)

    return _wrap(original, read, edited)


# --- reads ----------------------------------------------------------------------------------------


def _each(result: Any) -> Iterable[Any]:
    if isinstance(result, Mapping):
        return (result,)
    if isinstance(result, list | tuple):
        return result
    return ()


def _orders(tracker_of: TrackerOf, name: str, known_only: bool) -> Callable[[Any], None]:
    def apply(result: Any) -> None:
        tracker = tracker_of()
        if tracker is None:
            return
        for order in _each(result):
            if isinstance(order, Mapping):
                tracker.update(order, exchange=name, known_only=known_only)

    return apply


def _trades(tracker_of: TrackerOf, known_only: bool) -> Callable[[Any], None]:
    def apply(result: Any) -> None:
        tracker = tracker_of()
        if tracker is None:
            return
        for trade in _each(result):
            if isinstance(trade, Mapping):
                tracker.trade(trade, known_only=known_only)

    return apply
