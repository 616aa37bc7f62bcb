"""Decorators and context managers that instrument existing code without rewriting it.

Each decorator object is also a context manager (``with`` and ``async with``),
like ``prometheus_client``'s ``Timer``. Decorating has no side effects: the
:class:`~tradetel.Telemetry` is the ``telemetry=`` argument or, when none is
given, :func:`tradetel.get_default` looked up at call time. With neither, the
call runs exactly as if undecorated and the problem is logged once per
decorated function.

Generic decorators take a catalog name (``"orders.latency"``) or a handle:

- :class:`timed` records the duration (``perf_counter``) into a histogram;
- :class:`counted` adds 1 to a counter when a call completes;
- :class:`in_flight` holds +1 on an up-down counter while a call runs;
- :class:`count_exceptions` counts escaping exceptions by normalised error type.

Trading decorators record several catalog instruments at once:
:class:`order_placement`, :class:`order_cancel`, :class:`exchange_call`,
:class:`trade_close`, :class:`strategy_cycle`, :class:`strategy_stage` and
:class:`signal_handler`.

All of them work on functions, coroutines, generators and async generators
(for generators the measurement covers the whole iteration), methods,
classmethods and staticmethods; the wrapper keeps the name, docstring,
signature and static type; return values and exceptions pass through
unchanged.

Attribute values come from static keyword arguments (``exchange="binance"``),
from the call's arguments by parameter name (``from_args={"symbol": "symbol"}``,
dotted paths such as ``"order.symbol"`` or ``"self.id"`` reach inside), from
callables receiving the bound arguments, and, for what is recorded after the
call, from the result (``from_result={"side": "side"}`` or a callable). They
go through the catalog's label policies like any other measurement.

Example::

    from tradetel.decorators import exchange_call, order_placement, timed

    @order_placement(exchange="binance", reference_price="expected_price")
    def place(symbol: str, side: str, amount: float, expected_price: float) -> dict: ...

    @timed("strategy.stage.duration", strategy="grid", stage="fetch")
    async def fetch_candles(symbol: str) -> list[float]: ...

    with exchange_call(exchange="binance", endpoint="fetch_ticker"):
        ticker = client.fetch_ticker("BTC/USDT")

The one rule for how a decorator records: every measurement goes through
``emit()`` (in ``_framework``), with the call's attributes, attributes from
small closed sets as keywords (a status, a stage) and attributes from open
sets as ``detail`` (an error text, a rejection reason). When the attributes
are the decoration's static ones and there is no detail, ``emit()`` records
through a series bound once; otherwise through the instrument's handle.
Either way the catalog's label policies apply.

Package layout: ``_framework`` (:class:`Instrumentation`, :class:`Call`,
argument readers, ``emit``), ``_generic`` (:class:`timed`, :class:`counted`,
:class:`in_flight`, :class:`count_exceptions`) and ``_trading`` (the order,
exchange, trade, strategy and signal decorators).
"""

from ._framework import ArgSource as ArgSource
from ._framework import Call, Instrumentation, after
from ._framework import ResultSource as ResultSource
from ._framework import ValueSource as ValueSource
from ._generic import count_exceptions, counted, in_flight, timed
from ._trading import (
    OrderInfo,
    SignalRejected,
    TradeInfo,
    ccxt_order,
    error_type,
    exchange_call,
    order_cancel,
    order_placement,
    signal_handler,
    strategy_cycle,
    strategy_stage,
    trade_close,
    trade_result,
)

__all__ = [
    "Call",
    "Instrumentation",
    "OrderInfo",
    "SignalRejected",
    "TradeInfo",
    "after",
    "ccxt_order",
    "count_exceptions",
    "counted",
    "error_type",
    "exchange_call",
    "in_flight",
    "order_cancel",
    "order_placement",
    "signal_handler",
    "strategy_cycle",
    "strategy_stage",
    "timed",
    "trade_close",
    "trade_result",
]
