"""The trading decorators: several catalog instruments recorded per order, trade, exchange call, cycle or signal."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeGuard

from .. import _extractors as extract
from .._instruments import Instrument
from ..catalog import Kind
from ..errors import ConfigurationError
from ..telemetry import Telemetry
from ._framework import ArgSource, Call, Instrumentation, ResultSource, ValueSource, _failed, _Plan, emit

# --- trading decorators ----------------------------------------------------------------------------

OrderInfo = extract.OrderInfo
TradeInfo = extract.TradeInfo
ccxt_order = extract.ccxt_order
trade_result = extract.trade_result
error_type = extract.error_type


class SignalRejected(Exception):  # noqa: N818 - raised as a verdict on the signal, not as an error
    """Raise from a :class:`signal_handler` to count the signal as rejected for ``reason``; it is re-raised.

    Example::

        if payload["age"] > 30:
            raise SignalRejected("stale")
    """

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or reason)


_ORDER_ARGUMENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("symbol", ("symbol",)),
    ("side", ("side",)),
    ("order_type", ("order_type", "type")),
    ("time_in_force", ("time_in_force",)),
)


def _order_arguments(signature: inspect.Signature | None, keys: tuple[str, ...]) -> dict[str, ArgSource]:
    """Parameters named like ccxt's (``symbol``, ``side``, ``type``...) feed the matching attributes by default."""
    if signature is None:
        return {}
    found: dict[str, ArgSource] = {}
    for key, names in _ORDER_ARGUMENTS:
        if key in keys:
            for name in names:
                if name in signature.parameters:
                    found[key] = name
                    break
    if "time_in_force" in keys and "time_in_force" not in found and "params" in signature.parameters:
        found["time_in_force"] = "params.timeInForce"
    return found


def _order_attributes(attributes: Mapping[str, object], order: OrderInfo | None) -> Mapping[str, object]:
    """Attributes completed from the returned order where the call did not say (symbol, side, order type)."""
    if order is None:
        return attributes
    merged = dict(attributes)
    for key, value in (("symbol", order.symbol), ("side", order.side), ("order_type", order.type)):
        if value is not None and key not in merged:
            merged[key] = value
    return merged


class _Trading(Instrumentation):
    _role_names: ClassVar[dict[str, tuple[str, Kind]]] = {}

    def _roles(self) -> dict[str, tuple[str | Instrument, tuple[Kind, ...]]]:
        return {role: (name, (kind,)) for role, (name, kind) in self._role_names.items()}


class _OrderBase(_Trading):
    def __init__(
        self,
        *,
        telemetry: Telemetry | None,
        order: Callable[[Any], object],
        from_args: Mapping[str, ArgSource] | None,
        from_result: Mapping[str, ResultSource] | None,
        attributes: Mapping[str, object],
        values: Mapping[str, ValueSource | None] | None = None,
    ) -> None:
        self._order_reader = order
        self._auto_args = from_args is None
        super().__init__(
            telemetry=telemetry, attributes=attributes, from_args=from_args, from_result=from_result, values=values
        )

    def _default_from_args(self, signature: inspect.Signature | None) -> dict[str, ArgSource]:
        if not self._auto_args:
            return {}
        keys = ("symbol", "side", "order_type", "time_in_force")
        return {k: v for k, v in _order_arguments(signature, keys).items() if k not in self._static}

    def _read_order(self, call: Call, plan: _Plan) -> OrderInfo | None:
        """The returned order, read leniently (cancels: it only completes the attributes)."""
        if not call.has_result:
            return None
        raw = self._guard(plan, "order", self._order_reader, call.result)
        return raw if isinstance(raw, OrderInfo) or raw is None else extract.ccxt_order(raw)

    def _placed_order(self, call: Call, plan: _Plan) -> OrderInfo | str | _Failed | None:
        """The returned order, or why it cannot be read; ``None`` when there is none to read.

        The default reader reads the result as a ccxt order strictly (:func:`~tradetel._extractors.read_order`);
        a custom reader's ``None`` means no order, and what else it returns is read the same strict way.
        A reader that raises was counted as ``extractor_error``: that is ``_FAILED``.
        """
        if not call.has_result:
            return None
        if self._order_reader is extract.ccxt_order:
            raw: object = call.result
        else:
            raw = self._guard(plan, "order", self._order_reader, call.result, _FAILED)
            if isinstance(raw, _Failed):
                return raw
            if raw is None:
                return None
        try:
            return extract.read_order(raw)
        except extract.UnreadableError as error:
            return str(error)


class order_placement(_OrderBase):  # noqa: N801 - a decorator reads as a function
    """Instrument a function that places an order: submitted, filled/partial/rejected, latency, notional, slippage.

    Before the call ``orders.submitted`` is counted. When the call returns,
    the order is read from the result (default: the ccxt unified order
    structure, see :func:`ccxt_order`), then:

    - ``orders.filled`` when it is completely filled (``filled >= amount`` or
      status ``closed``), ``orders.partially_filled`` when ``0 < filled < amount``,
      ``orders.rejected`` when its status is ``rejected``;
    - ``orders.latency`` with ``stage="ack"``: the call's duration;
    - ``orders.notional``: amount times average (else limit) price, or ``cost``;
    - ``orders.slippage`` in signed basis points against ``reference_price``,
      positive when worse: buy ``(average - ref) / ref * 1e4``, sell the opposite.

    An order the default reader cannot read (a field of the wrong type, no
    ``status``, ``filled`` or ``amount``, ``None``) records no outcome,
    notional or slippage: it is counted as ``reason=unreadable_order`` and
    logged once (strict mode raises); the latency is still recorded.

    When the call raises, ``orders.rejected`` is counted with the exception's
    class name and message folded to a canonical reason (the class name alone
    when the message cannot be rendered), and the exception is re-raised.

    Parameters named ``symbol``, ``side``, ``type``/``order_type`` and
    ``time_in_force`` (or ccxt's ``params["timeInForce"]``) feed the
    matching attributes unless ``from_args`` is given; symbol, side and type
    missing from the arguments are taken from the returned order.

    Args:
        reference_price: the expected price: a parameter name (``"expected_price"``,
            ``"params.ref"``), a number, or a callable receiving the result.
        order: reads the order from the result; returns an :class:`OrderInfo`,
            a mapping/object shaped like a ccxt order, or ``None``.
        telemetry, from_args, from_result, **attributes: as :class:`timed`
            (keys: exchange, symbol, side, order_type, time_in_force).

    Example::

        @order_placement(exchange="binance", reference_price="mid")
        def buy(symbol: str, amount: float, mid: float) -> dict:
            return exchange.create_order(symbol, "market", "buy", amount)
    """

    _name = "order_placement"
    _role_names: ClassVar[dict[str, tuple[str, Kind]]] = {
        "submitted": ("orders.submitted", Kind.COUNTER),
        "filled": ("orders.filled", Kind.COUNTER),
        "partial": ("orders.partially_filled", Kind.COUNTER),
        "rejected": ("orders.rejected", Kind.COUNTER),
        "latency": ("orders.latency", Kind.HISTOGRAM),
        "notional": ("orders.notional", Kind.HISTOGRAM),
        "slippage": ("orders.slippage", Kind.HISTOGRAM),
    }

    def __init__(
        self,
        *,
        reference_price: ValueSource | None = None,
        order: Callable[[Any], object] = extract.ccxt_order,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        from_result: Mapping[str, ResultSource] | None = None,
        **attributes: object,
    ) -> None:
        super().__init__(
            telemetry=telemetry,
            order=order,
            from_args=from_args,
            from_result=from_result,
            attributes=attributes,
            values={"reference_price": reference_price},
        )

    def _enter(self, call: Call, plan: _Plan) -> None:
        emit(call, plan, "add", "submitted", 1)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        if exc is not None:
            if _failed(exc):
                emit(call, plan, "add", "rejected", 1, detail={"reason": extract.error_text(exc)})
            return
        read = self._placed_order(call, plan)
        order = read if isinstance(read, OrderInfo) else None
        attributes = _order_attributes(call.attributes, order)
        emit(call, plan, "record", "latency", duration, attributes, stage="ack")
        if isinstance(read, str | _Failed) and call.reason is None:  # its outcome, notional and slippage are lost
            if isinstance(read, str):
                plan.unreadable(f"{self._name}({call._site.name})", "unreadable_order", read)
            return
        outcome = "rejected" if call.reason is not None else order.outcome if order is not None else None
        if outcome == "rejected":
            emit(call, plan, "add", "rejected", 1, attributes, detail={"reason": call.reason or "rejected"})
        elif outcome == "filled":
            emit(call, plan, "add", "filled", 1, attributes)
        elif outcome == "partial":
            emit(call, plan, "add", "partial", 1, attributes)
        if order is None:
            return
        notional = order.notional
        if notional is not None:
            emit(call, plan, "record", "notional", notional, attributes)
        if order.filled is not None and order.filled <= 0:
            return
        reference = extract.number(self._value(call, plan, "reference_price"))
        side = order.side or _text_or_none(attributes.get("side"))
        slippage = extract.slippage_bp(side, order.average, reference)
        if slippage is not None:
            emit(call, plan, "record", "slippage", slippage, attributes)


class order_cancel(_OrderBase):  # noqa: N801 - a decorator reads as a function
    """Instrument a function that cancels an order: ``orders.cancelled`` and ``orders.latency`` (``stage="cancel"``).

    Counted when the call returns (a raised exception means the order was not
    cancelled); symbol, side and type come from the arguments (parameters
    named like ccxt's) or from the returned order.

    Example::

        @order_cancel(exchange="binance")
        def cancel(order_id: str, symbol: str) -> dict: ...
    """

    _name = "order_cancel"
    _role_names: ClassVar[dict[str, tuple[str, Kind]]] = {
        "cancelled": ("orders.cancelled", Kind.COUNTER),
        "latency": ("orders.latency", Kind.HISTOGRAM),
    }

    def __init__(
        self,
        *,
        order: Callable[[Any], object] = extract.ccxt_order,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        from_result: Mapping[str, ResultSource] | None = None,
        **attributes: object,
    ) -> None:
        super().__init__(
            telemetry=telemetry, order=order, from_args=from_args, from_result=from_result, attributes=attributes
        )

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        if exc is not None:
            return
        attributes = _order_attributes(call.attributes, self._read_order(call, plan))
        emit(call, plan, "add", "cancelled", 1, attributes)
        emit(call, plan, "record", "latency", duration, attributes, stage="cancel")


class exchange_call(_Trading):  # noqa: N801 - a decorator reads as a function
    """Instrument an exchange API call: requests by status, duration, errors by type and the error streak.

    Records ``exchange.requests`` (``status`` ok or error),
    ``exchange.request.duration``, ``exchange.errors`` with ``error_type``
    folded from the exception's class name and message (timeout,
    rate_limit, auth_error...), and sets ``exchange.error_streak``: the
    consecutive errors of that exchange across every decorated call,
    back to 0 after a success. Exceptions are re-raised unchanged.

    Args:
        endpoint: the ``endpoint`` attribute; default the function's name.
        telemetry, from_args, **attributes: as :class:`timed` (keys: exchange, endpoint).

    Example::

        @exchange_call(exchange="binance")
        async def fetch_ticker(symbol: str) -> dict: ...
    """

    _name = "exchange_call"
    _named_by_function = "endpoint"
    _role_names: ClassVar[dict[str, tuple[str, Kind]]] = {
        "requests": ("exchange.requests", Kind.COUNTER),
        "duration": ("exchange.request.duration", Kind.HISTOGRAM),
        "errors": ("exchange.errors", Kind.COUNTER),
        "streak": ("exchange.error_streak", Kind.GAUGE),
    }

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        **attributes: object,
    ) -> None:
        super().__init__(telemetry=telemetry, attributes={"endpoint": endpoint, **attributes}, from_args=from_args)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        emit(call, plan, "record", "duration", duration)
        if exc is not None and not _failed(exc):
            return
        failed = exc is not None
        emit(call, plan, "add", "requests", 1, status="error" if failed else "ok")
        if exc is not None:
            emit(call, plan, "add", "errors", 1, detail={"error_type": extract.error_text(exc)})
        telemetry = plan.telemetry  # never None here: the roles are catalog names
        streak = (
            telemetry._error_streak(_key_text(call.attributes.get("exchange")), failed) if telemetry else int(failed)
        )
        emit(call, plan, "set", "streak", streak)


class trade_close(_Trading):  # noqa: N801 - a decorator reads as a function
    """Instrument a function that closes a trade: ``trades.closed`` by outcome, ``trades.r_multiple``, realised PnL.

    When the call returns, the trade is read from the result (default
    :func:`trade_result`: a bare number is the R-multiple; a mapping or
    object gives ``r_multiple``/``r``, ``pnl``/``realized_pnl`` and
    ``outcome``). ``r_multiple=``, ``pnl=`` and ``outcome=`` override it, each
    a parameter name (dotted path allowed, read when the call ends, like
    :class:`after`), a constant or a callable receiving the result. The
    outcome is the explicit one, else the sign of the PnL, else of R;
    ``|value| <= breakeven`` is a breakeven. Nothing is recorded when the call
    raises (the trade did not close), and nothing partial when the trade
    cannot be read (a field of the wrong type, no outcome, PnL or R at all):
    the trade is dropped, counted as ``reason=unreadable_trade`` and logged
    once (strict mode raises :class:`~tradetel.InvalidValueError`).

    Example::

        @trade_close(strategy="breakout", from_args={"symbol": "symbol"})
        def close_position(symbol: str) -> dict:
            return {"r_multiple": 1.8, "pnl": 36.0}

        @trade_close(strategy="scalp", r_multiple="r", from_args={"symbol": "symbol"})
        def on_exit(symbol: str, r: float) -> None: ...
    """

    _name = "trade_close"
    _values_after = True  # a close: the trade's final values exist only once the call is over
    _role_names: ClassVar[dict[str, tuple[str, Kind]]] = {
        "closed": ("trades.closed", Kind.COUNTER),
        "r_multiple": ("trades.r_multiple", Kind.HISTOGRAM),
        "pnl": ("trades.realized_pnl", Kind.UP_DOWN_COUNTER),
    }

    def __init__(
        self,
        *,
        r_multiple: ValueSource | None = None,
        pnl: ValueSource | None = None,
        outcome: ValueSource | None = None,
        breakeven: float = 0.0,
        trade: Callable[[Any], object] = extract.trade_result,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        from_result: Mapping[str, ResultSource] | None = None,
        **attributes: object,
    ) -> None:
        if breakeven < 0:
            raise ConfigurationError("trade_close(breakeven)", breakeven, "a band >= 0 around zero")
        self._breakeven = breakeven
        self._trade_reader = trade
        super().__init__(
            telemetry=telemetry,
            attributes=attributes,
            from_args=from_args,
            from_result=from_result,
            values={"r_multiple": r_multiple, "pnl": pnl, "outcome": outcome},
        )

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        if exc is not None:
            return
        subject = f"{self._name}({call._site.name})"
        problems: list[str] = []
        given: dict[str, Any] = {}
        for name in ("r_multiple", "pnl", "outcome"):
            value = self._value(call, plan, name, _FAILED)
            if value is _FAILED:
                return  # counted as extractor_error; a trade without that value would be recorded partially
            if value is None:
                continue
            read = _outcome_text(value) if name == "outcome" else extract.number(value)
            if read is None:
                problems.append(f"{name}= gave a {type(value).__name__}, not a {_WANTED[name]}")
            given[name] = read
        info: TradeInfo | None = None
        if len(given) < 3 and call.has_result:
            info, problem = self._read_trade(call, plan)
            if info is _FAILED:
                return
            if problem is not None:
                problems.append(problem)
        if problems:
            plan.unreadable(subject, "unreadable_trade", "; ".join(problems))
            return
        trade = TradeInfo(
            r_multiple=given.get("r_multiple", info.r_multiple if info else None),
            pnl=given.get("pnl", info.pnl if info else None),
            outcome=given.get("outcome", info.outcome if info else None),
        )
        outcome = trade.classify(self._breakeven)
        if outcome is None:
            returned = f"the call returned {type(call.result).__name__}" if call.has_result else "no result was set"
            plan.unreadable(subject, "unreadable_trade", f"no outcome, pnl or r_multiple ({returned})")
            return
        emit(call, plan, "add", "closed", 1, detail={"outcome": outcome})
        if trade.r_multiple is not None:
            emit(call, plan, "record", "r_multiple", trade.r_multiple)
        if trade.pnl is not None:
            emit(call, plan, "add", "pnl", trade.pnl)

    def _read_trade(self, call: Call, plan: _Plan) -> tuple[Any, str | None]:
        """The trade the call returned and, when it cannot be read, why; ``(_FAILED, None)`` if the reader raised.

        A result of ``None`` is no trade rather than a problem: the values given by argument may be enough.
        """
        raw: object = call.result
        if self._trade_reader is not extract.trade_result:
            raw = self._guard(plan, "trade", self._trade_reader, call.result, _FAILED)
            if raw is _FAILED:
                return _FAILED, None
        if raw is None:
            return None, None
        try:
            return extract.read_trade(raw), None
        except extract.UnreadableError as error:
            return None, str(error)


_WANTED = {"r_multiple": "finite number", "pnl": "finite number", "outcome": "text"}


def _outcome_text(value: object) -> str | None:
    """An explicit outcome as text; ``None`` when it has none (its ``__str__`` raises)."""
    if _is_text(value):
        return value or None
    try:
        return str(value) or None
    except Exception:
        return None


class strategy_cycle(_Trading):  # noqa: N801 - a decorator reads as a function
    """Instrument one strategy cycle: ``strategy.cycles`` by status and ``strategy.cycle.duration``.

    The status is ``call.set_status()`` in a ``with`` block, else ``timeout``
    for a :class:`TimeoutError`, ``error`` for another exception, else
    ``status(result)`` when given (e.g. ``lambda r: "skipped" if r is None
    else "ok"``), else ``ok``.

    Example::

        @strategy_cycle(strategy="grid")
        async def run_cycle() -> None: ...
    """

    _name = "strategy_cycle"
    _role_names: ClassVar[dict[str, tuple[str, Kind]]] = {
        "cycles": ("strategy.cycles", Kind.COUNTER),
        "duration": ("strategy.cycle.duration", Kind.HISTOGRAM),
    }

    def __init__(
        self,
        *,
        status: Callable[[Any], object] | None = None,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        **attributes: object,
    ) -> None:
        self._status = status
        super().__init__(telemetry=telemetry, attributes=attributes, from_args=from_args)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        emit(call, plan, "record", "duration", duration)
        if exc is not None and not _failed(exc):
            return
        status: object = call.status
        if status is None:
            if isinstance(exc, TimeoutError):
                status = "timeout"
            elif exc is not None:
                status = "error"
            elif self._status is not None and call.has_result:
                found = self._guard(plan, "status", self._status, call.result)
                status = "ok" if found is None or (_is_text(found) and not found) else found
            else:
                status = "ok"
        emit(call, plan, "add", "cycles", 1, detail={"status": status})


class strategy_stage(_Trading):  # noqa: N801 - a decorator reads as a function
    """Time one stage of a strategy cycle into ``strategy.stage.duration``.

    Args:
        stage: the stage name; default the decorated function's name.
        telemetry, from_args, **attributes: as :class:`timed` (keys: strategy, stage).

    Example::

        @strategy_stage("signals", strategy="grid")
        def compute_signals(candles): ...

        with strategy_stage("execution", strategy="grid", telemetry=tel):
            place_orders()
    """

    _name = "strategy_stage"
    _named_by_function = "stage"
    _role_names: ClassVar[dict[str, tuple[str, Kind]]] = {"duration": ("strategy.stage.duration", Kind.HISTOGRAM)}

    def __init__(
        self,
        stage: str | None = None,
        /,
        *,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        **attributes: object,
    ) -> None:
        super().__init__(telemetry=telemetry, attributes={"stage": stage, **attributes}, from_args=from_args)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        emit(call, plan, "record", "duration", duration)


RejectReason = str | Callable[[BaseException], object]


class signal_handler(_Trading):  # noqa: N801 - a decorator reads as a function
    """Instrument a signal or webhook handler: received, rejected by reason, processing time, in flight.

    ``signals.in_flight`` is +1 while the handler runs. When it ends,
    ``signals.received`` is counted and ``signals.processing.duration``
    recorded with ``status`` ``ok``, ``rejected`` or ``error``. A signal is
    rejected (``signals.rejected`` by reason) when the handler raises
    :class:`SignalRejected`, raises an exception listed in ``reject_on``,
    returns a value for which ``rejection(result)`` gives a reason, or calls
    ``call.reject(reason)`` in a ``with`` block. Reasons fold to invalid_payload,
    invalid_signature, stale, low_confidence, duplicate, rate_limited or unauthorized.

    Args:
        rejection: receives the result; returns a reason when the signal was refused, else ``None``.
        reject_on: exception class → reason (a string or a callable of the exception).
        telemetry, from_args, from_result, **attributes: as :class:`timed`
            (keys: source, signal_type, symbol, side).

    Example::

        @signal_handler(source="tradingview", from_args={"symbol": "payload.symbol", "side": "payload.side"},
                        reject_on={ValueError: "invalid_payload"})
        async def on_webhook(payload: dict) -> dict: ...
    """

    _name = "signal_handler"
    _role_names: ClassVar[dict[str, tuple[str, Kind]]] = {
        "received": ("signals.received", Kind.COUNTER),
        "rejected": ("signals.rejected", Kind.COUNTER),
        "duration": ("signals.processing.duration", Kind.HISTOGRAM),
        "in_flight": ("signals.in_flight", Kind.UP_DOWN_COUNTER),
    }

    def __init__(
        self,
        *,
        rejection: Callable[[Any], object] | None = None,
        reject_on: Mapping[type[BaseException], RejectReason] | None = None,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        from_result: Mapping[str, ResultSource] | None = None,
        **attributes: object,
    ) -> None:
        self._rejection = rejection
        self._reject_on = dict(reject_on or {})
        for kind, reason in self._reject_on.items():
            if not (isinstance(kind, type) and issubclass(kind, BaseException)) or not (
                isinstance(reason, str) or callable(reason)
            ):
                raise ConfigurationError(
                    "signal_handler(reject_on)", {kind: reason}, "exception class → reason (str or callable)"
                )
        super().__init__(telemetry=telemetry, attributes=attributes, from_args=from_args, from_result=from_result)

    def _enter(self, call: Call, plan: _Plan) -> None:
        call.entered = call.attributes
        emit(call, plan, "add", "in_flight", 1)

    def _reason(self, call: Call, plan: _Plan, exc: BaseException | None) -> object:
        if call.reason is not None:
            return call.reason
        if isinstance(exc, SignalRejected):
            return exc.reason
        if exc is not None:
            for kind, reason in self._reject_on.items():
                if isinstance(exc, kind):
                    return reason if isinstance(reason, str) else self._guard(plan, "reject_on", reason, exc)
            return None
        if self._rejection is not None and call.has_result:
            return self._guard(plan, "rejection", self._rejection, call.result)
        return None

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        emit(call, plan, "add", "in_flight", -1, call.entered)
        reason = self._reason(call, plan, exc)
        if reason is not None:
            status = "rejected"
            emit(call, plan, "add", "rejected", 1, detail={"reason": reason})
        elif exc is not None:
            status = "error"
        else:
            status = "ok"
        emit(call, plan, "add", "received", 1)
        emit(call, plan, "record", "duration", duration, status=status)


def _text_or_none(value: object) -> str | None:
    return value if _is_text(value) else None


class _Failed:
    """What a guarded reader gives when it raised (already counted as ``extractor_error``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<reader failed>"


_FAILED = _Failed()


def _key_text(value: object) -> str:
    """A value as a dictionary key for per-exchange state; never raises (an unprintable value keys by type)."""
    if value is None:
        return ""
    if _is_text(value):
        return value
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _is_text(value: object) -> TypeGuard[str]:
    """``isinstance(value, str)`` for values the caller supplied; ``False`` when even that raises (``__class__``)."""
    try:
        return isinstance(value, str)
    except Exception:
        return False
