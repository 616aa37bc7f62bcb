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
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from contextvars import ContextVar
from time import perf_counter
from types import TracebackType
from typing import Any, ClassVar, ParamSpec, TypeGuard, TypeVar, overload

from . import _extractors as extract
from ._fork import renew_after_fork
from ._instruments import BoundSeries, Instrument
from .catalog import Kind
from .errors import ConfigurationError, MeasurementError
from .telemetry import Telemetry, get_default

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

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class after:  # noqa: N801 - reads as a function at the call site: pnl=after("trade.pl")
    """Read a value from the call's arguments when the call ends, instead of when it starts.

    ``source`` is a parameter name with an optional dotted path (``"trade.pl"``) or a callable
    receiving the bound arguments by name. It reads the objects the call received: what the
    function changed in them is seen, a parameter rebound inside the function is not. Accepted
    wherever an argument is read: ``from_args`` values and value sources such as ``pnl=``.

    Example::

        @trade_close(strategy="grid", pnl=after("trade.pl"), from_args={"symbol": "trade.symbol"})
        def close(trade: Trade) -> None:
            trade.pl = exchange.close(trade)  # the PnL exists only once the call is over
    """

    __slots__ = ("source",)

    def __init__(self, source: str | Callable[[Mapping[str, Any]], object]) -> None:
        if not isinstance(source, str) and not callable(source):
            raise ConfigurationError(
                "after(...)", source, "a parameter name (dotted path allowed) or a callable of the bound arguments"
            )
        self.source = source

    def __repr__(self) -> str:
        return f"after({self.source!r})"


ArgSource = str | Callable[[Mapping[str, Any]], object] | after
"""A parameter name (dotted path allowed) or a callable receiving the call's bound arguments by name.

Read when the call starts; wrapped in :class:`after`, when it ends.
"""
ResultSource = str | Callable[[Any], object]
"""A field path of the result (``"side"``, ``"info.fee"``) or a callable receiving the result."""
ValueSource = str | float | Callable[[Any], object] | after
"""A measured value: a parameter name (dotted path allowed), a constant, a callable receiving the result,
or :class:`after` (an argument read when the call ends)."""

OrderInfo = extract.OrderInfo
TradeInfo = extract.TradeInfo
ccxt_order = extract.ccxt_order
trade_result = extract.trade_result
error_type = extract.error_type

_logger = logging.getLogger("tradetel")
_OPEN: ContextVar[tuple[Call, ...]] = ContextVar("tradetel_open_calls", default=())


class SignalRejected(Exception):  # noqa: N818 - raised as a verdict on the signal, not as an error
    """Raise from a :class:`signal_handler` to count the signal as rejected for ``reason``; it is re-raised.

    Example::

        if payload["age"] > 30:
            raise SignalRejected("stale")
    """

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or reason)


class Call:
    """One instrumented call or ``with`` block; ``with decorator as call`` gives it to the block.

    Inside a ``with`` block, feed what a decorated call would have read from
    its return value: :meth:`set_result`, :meth:`set` (attributes),
    :meth:`reject` (a signal or order refused, with a reason) and
    :meth:`set_status` (a strategy cycle's status).

    Example::

        with order_placement(exchange="binance", reference_price=mid) as call:
            call.set_result(exchange.create_order("BTC/USDT", "market", "buy", 0.01))
    """

    __slots__ = (
        "_plan",
        "_site",
        "arguments",
        "attributes",
        "entered",
        "has_result",
        "reason",
        "result",
        "start",
        "status",
        "values",
    )

    def __init__(self, plan: _Plan | None, site: _Site, attributes: dict[str, object]) -> None:
        self._plan = plan
        self._site = site
        self.attributes = attributes
        self.values: dict[str, Any] = {}
        self.result: Any = None
        self.has_result = False
        self.reason: str | None = None
        self.status: str | None = None
        self.entered: dict[str, object] | None = None
        self.arguments: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self.start = 0.0

    def set(self, **attributes: object) -> None:
        """Add attributes to what is recorded when the call ends (``None`` values are ignored)."""
        if self.attributes is self._site.static:
            self.attributes = dict(self.attributes)
        self.attributes.update({k: v for k, v in attributes.items() if v is not None})

    def set_result(self, result: object) -> None:
        """The value a decorated function would have returned (an order, a trade, a response...)."""
        self.result = result
        self.has_result = True

    def reject(self, reason: str) -> None:
        """Count this signal or order as rejected for ``reason`` (a free text folded by the catalog policy)."""
        self.reason = reason

    def set_status(self, status: str) -> None:
        """A strategy cycle's status: ``ok``, ``error``, ``skipped`` or ``timeout``."""
        self.status = status

    @property
    def elapsed(self) -> float:
        """Seconds since the call started (``perf_counter``)."""
        return perf_counter() - self.start

    def __repr__(self) -> str:
        return f"<Call {self._site.name} attributes={self.attributes}>"


Getters = tuple[tuple[str, Callable[..., object]], ...]


class _Site:
    """What one decoration compiled once: the function's name, argument readers and static attributes.

    ``arg_getters``/``value_getters`` read attributes and measured values when the call starts;
    ``after_arg_getters``/``after_value_getters`` read them when it ends (:class:`after`).
    """

    __slots__ = (
        "_series",
        "after_arg_getters",
        "after_value_getters",
        "arg_getters",
        "bound_needed",
        "name",
        "signature",
        "static",
        "value_getters",
    )

    def __init__(self, name: str, static: dict[str, object], signature: inspect.Signature | None) -> None:
        self.name = name
        self.static = static
        self.signature = signature
        self.arg_getters: Getters = ()
        self.value_getters: Getters = ()
        self.after_arg_getters: Getters = ()
        self.after_value_getters: Getters = ()
        self.bound_needed = False
        self._series: tuple[_Plan, dict[object, BoundSeries]] | None = None

    def series(self, plan: _Plan, role: str, **extra: object) -> BoundSeries:
        """A series bound once to the static attributes (plus decorator values from small closed sets)."""
        cache = self._series
        if cache is None or cache[0] is not plan:
            cache = self._series = (plan, {})
        key: object = (role, *extra.values()) if extra else role
        found = cache[1].get(key)
        if found is None:
            found = cache[1][key] = plan.handles[role].bind(**plan.attrs(role, self.static, **extra))
        return found

    def read_arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, ended: bool = False
    ) -> tuple[dict[str, object], dict[str, Any]]:
        """Attributes and measured values taken from one call's arguments, at its start or (``ended``) its end."""
        bound: Mapping[str, Any] | None = None
        if self.bound_needed and self.signature is not None:
            try:
                binding = self.signature.bind(*args, **kwargs)
                binding.apply_defaults()
                bound = binding.arguments
            except TypeError:
                bound = {}
        attributes: dict[str, object] = {} if ended else dict(self.static)
        values: dict[str, Any] = {}
        arg_getters, value_getters = (
            (self.after_arg_getters, self.after_value_getters) if ended else (self.arg_getters, self.value_getters)
        )
        for out, getters in ((attributes, arg_getters), (values, value_getters)):
            for key, getter in getters:
                value = getter(args, kwargs) if isinstance(getter, extract.ArgGetter) else getter(bound or {})
                if value is not None:
                    out[key] = value
        return attributes, values


class _Plan:
    """The instruments of one decorator resolved against one Telemetry, with their accepted keys."""

    __slots__ = ("handles", "keys", "telemetry")

    def __init__(self, telemetry: Telemetry | None) -> None:
        self.telemetry = telemetry
        self.handles: dict[str, Instrument] = {}
        self.keys: dict[str, frozenset[str]] = {}

    def attrs(self, role: str, attributes: Mapping[str, object], **extra: object) -> dict[str, object]:
        keys = self.keys[role]
        out = {k: v for k, v in attributes.items() if k in keys}
        out.update({k: v for k, v in extra.items() if k in keys and v is not None})
        return out

    def add(self, role: str, amount: float, attributes: Mapping[str, object], **extra: object) -> None:
        handle = self.handles.get(role)
        if handle is not None:
            handle.add(amount, **self.attrs(role, attributes, **extra))

    def record(self, role: str, value: float, attributes: Mapping[str, object], **extra: object) -> None:
        handle = self.handles.get(role)
        if handle is not None:
            handle.record(value, **self.attrs(role, attributes, **extra))

    def set(self, role: str, value: float, attributes: Mapping[str, object], **extra: object) -> None:
        handle = self.handles.get(role)
        if handle is not None:
            handle.set(value, **self.attrs(role, attributes, **extra))

    def problem(self, subject: str, reason: str, detail: object) -> None:
        """A value the decorator could not read: counted as a dropped measurement (raised in strict mode)."""
        cause = detail if isinstance(detail, BaseException) else None
        if self.telemetry is not None:
            self.telemetry.health.drop(subject, reason, detail, cause=cause)
        else:
            _logger.warning("tradetel: %s: %s (%s)", subject, reason, type(detail).__name__)

    def unreadable(self, subject: str, reason: str, detail: str) -> None:
        """A default reader could not read what the call gave it: nothing of it is recorded; counted and logged."""
        if self.telemetry is not None:
            self.telemetry.health.unreadable(subject, reason, detail)
        else:
            _logger.warning("tradetel: %s: %s: %s", subject, reason, detail)


class Instrumentation:
    """Base of every decorator: one object that decorates functions and serves as a context manager.

    Subclasses declare the instruments they record (``_roles``) and implement
    ``_enter`` (before the call) and ``_exit`` (after it, with its duration and
    exception). Per-call state lives in a :class:`Call`, never on the object,
    so one decorator may wrap many functions and run in many threads and tasks.
    """

    _name: ClassVar[str] = "instrumentation"
    _named_by_function: ClassVar[str | None] = None
    """An attribute key that defaults to the decorated function's name (``endpoint``, ``stage``)."""
    _values_after: ClassVar[bool] = False
    """Whether measured values named by parameter (``pnl="trade.pl"``) are read when the call ends."""

    def __init__(
        self,
        *,
        telemetry: Telemetry | None,
        attributes: Mapping[str, object],
        from_args: Mapping[str, ArgSource] | None = None,
        from_result: Mapping[str, ResultSource] | None = None,
        values: Mapping[str, ValueSource | None] | None = None,
    ) -> None:
        if telemetry is not None and not isinstance(telemetry, Telemetry):
            raise ConfigurationError(
                f"{self._name}(telemetry=...)", type(telemetry).__name__, "a Telemetry from configure(), or None"
            )
        self._telemetry = telemetry
        self._static = {k: v for k, v in attributes.items() if v is not None}
        self._from_args: dict[str, ArgSource] = dict(from_args or {})
        self._from_result: dict[str, Callable[[Any], object]] = {
            key: _result_reader(f"{self._name}(from_result[{key!r}])", source)
            for key, source in (from_result or {}).items()
        }
        self._values: dict[str, ValueSource] = {k: v for k, v in (values or {}).items() if v is not None}
        for key, source in self._values.items():
            if not isinstance(source, str | int | float | after) and not callable(source):
                raise ConfigurationError(
                    f"{self._name}({key}=...)",
                    source,
                    "a parameter name, a number, a callable receiving the result, or after(parameter)",
                )
        self._cached: tuple[Telemetry | None, _Plan | None] | None = None
        self._warned: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._cm_site = _Site("<with>", self._site_static(None), None)
        self._handles_only = all(isinstance(instrument, Instrument) for instrument, _ in self._roles().values())
        if telemetry is not None:
            self._plan(telemetry)  # configuration errors surface here, at decoration time

    # --- what subclasses provide ------------------------------------------------------------------

    def _roles(self) -> dict[str, tuple[str | Instrument, tuple[Kind, ...]]]:
        raise NotImplementedError

    def _site_static(self, fn: Callable[..., Any] | None) -> dict[str, object]:
        """Static attributes for one decorated function, with the function's name as default where declared."""
        static = dict(self._static)
        key = self._named_by_function
        if key is not None and fn is not None and key not in static and key not in self._from_args:
            static[key] = getattr(fn, "__name__", None) or type(fn).__name__
        return static

    def _default_from_args(self, signature: inspect.Signature | None) -> dict[str, ArgSource]:
        return {}

    def _enter(self, call: Call, plan: _Plan) -> None:
        pass

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        raise NotImplementedError

    # --- resolution -------------------------------------------------------------------------------

    def _build_plan(self, telemetry: Telemetry | None) -> _Plan:
        plan = _Plan(telemetry)
        for role, (instrument, kinds) in self._roles().items():
            setting = f"{self._name}(instrument={instrument!r})" if role == "main" else f"{self._name}"
            if isinstance(instrument, Instrument):
                handle = instrument
            else:
                if telemetry is None:
                    raise ConfigurationError(setting, instrument, "a handle, or a telemetry to look the name up in")
                try:
                    handle = telemetry.instrument(instrument)
                except KeyError:
                    raise ConfigurationError(
                        setting, instrument, "the name of an instrument in the catalog, e.g. 'orders.latency'"
                    ) from None
            if handle.spec.kind not in kinds:
                accepted = " or ".join(k.value for k in kinds)
                raise ConfigurationError(setting, f"{handle.name} ({handle.spec.kind.value})", f"a {accepted}")
            plan.handles[role] = handle
            plan.keys[role] = frozenset(handle.spec.attribute_keys)
        accepted_keys = frozenset().union(*plan.keys.values()) if plan.keys else frozenset()
        for key in (*self._static, *self._from_args, *self._from_result):
            if key not in accepted_keys:
                names = ", ".join(h.name for h in plan.handles.values())
                raise ConfigurationError(
                    f"{self._name}({key}=...)", key, f"an attribute key of {names}: {', '.join(sorted(accepted_keys))}"
                )
        return plan

    def _plan(self, telemetry: Telemetry | None) -> _Plan:
        cached = self._cached
        if cached is not None and cached[0] is telemetry and cached[1] is not None:
            return cached[1]
        plan = self._build_plan(telemetry)
        self._cached = (telemetry, plan)
        return plan

    def _resolve(self, site_name: str, telemetry: Telemetry | None) -> _Plan | None:
        """The plan for ``telemetry`` (slow path); ``None``, remembered, when there is nothing to record into."""
        if telemetry is None and not self._handles_only:
            self._warn_once(
                site_name,
                "no-telemetry",
                "tradetel: %s(%s) records nothing: pass telemetry= or call tradetel.set_default(tel)",
                self._name,
                site_name,
            )
            self._cached = (None, None)
            return None
        try:
            return self._plan(telemetry)
        except ConfigurationError:
            if telemetry is not None and telemetry.strict:
                raise
            self._warn_once(
                site_name, "config", "tradetel: %s(%s) records nothing", self._name, site_name, exc_info=True
            )
            self._cached = (telemetry, None)
            return None

    def _warn_once(self, site_name: str, reason: str, message: str, *args: object, exc_info: bool = False) -> None:
        key = (site_name, reason)
        if key in self._warned:
            return
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        _logger.warning(message + " (logged once)", *args, exc_info=exc_info)

    # --- one call ---------------------------------------------------------------------------------

    def _begin(self, site: _Site, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
        telemetry = self._telemetry or get_default()
        cached = self._cached
        plan = cached[1] if cached is not None and cached[0] is telemetry else self._resolve(site.name, telemetry)
        if plan is None:
            return Call(None, site, site.static)
        if site.arg_getters or site.value_getters:
            try:
                attributes, values = site.read_arguments(args, kwargs)
            except Exception as error:  # a from_args callable failed: record with the static attributes only
                plan.problem(f"{self._name}.from_args", "extractor_error", error)
                attributes, values = site.static, {}
            call = Call(plan, site, attributes)
            call.values = values
        else:
            call = Call(plan, site, site.static)
        if site.after_arg_getters or site.after_value_getters:
            call.arguments = (args, kwargs)
        self._enter(call, plan)
        call.start = perf_counter()
        return call

    def _end(self, call: Call, result: object, exc: BaseException | None, *, returned: bool) -> None:
        duration = perf_counter() - call.start
        plan = call._plan
        if plan is None:
            return
        if returned and not call.has_result:
            call.result = result
            call.has_result = True
        try:
            if call.arguments is not None:
                self._read_arguments_after(call, plan)
            if call.has_result and self._from_result:
                self._read_result_attributes(call, plan)
            self._exit(call, plan, duration, exc)
        except MeasurementError:
            if exc is None:
                raise  # strict mode: a bad measurement is the caller's bug, shown where it happens
            _logger.warning("tradetel: %s(%s) could not record", self._name, call._site.name, exc_info=True)
        except Exception:
            if plan.telemetry is not None and plan.telemetry.strict and exc is None:
                raise
            self._warn_once(
                call._site.name, "exit", "tradetel: %s(%s) failed to record", self._name, call._site.name, exc_info=True
            )

    def _read_arguments_after(self, call: Call, plan: _Plan) -> None:
        args, kwargs = call.arguments or ((), {})
        call.arguments = None  # the call's arguments are not kept beyond it
        try:
            attributes, values = call._site.read_arguments(args, kwargs, ended=True)
        except Exception as error:  # an after() callable failed: record without what it would have read
            plan.problem(f"{self._name}.from_args", "extractor_error", error)
            return
        if attributes:
            call.attributes = {**call.attributes, **attributes}
        call.values.update(values)

    def _read_result_attributes(self, call: Call, plan: _Plan) -> None:
        if call.attributes is call._site.static:
            call.attributes = dict(call.attributes)
        for key, reader in self._from_result.items():
            value = self._guard(plan, f"from_result[{key!r}]", reader, call.result)
            if value is not None:
                call.attributes[key] = value

    def _guard(self, plan: _Plan, what: str, reader: Callable[[Any], object], value: object, failed: Any = None) -> Any:
        """``reader(value)``; ``failed`` when it raises, which is counted as ``extractor_error``."""
        try:
            return reader(value)
        except Exception as error:
            plan.problem(f"{self._name}.{what}", "extractor_error", error)
            return failed

    def _value(self, call: Call, plan: _Plan, name: str, failed: Any = None) -> Any:
        """A measured value: read from the arguments, a constant, or read from the result now.

        ``failed`` when a callable of the result raised (counted as ``extractor_error``).
        """
        if name in call.values:
            return call.values[name]
        source = self._values.get(name)
        if source is None or isinstance(source, str | after):
            return None
        if isinstance(source, int | float):
            return source
        if not call.has_result:
            return None
        return self._guard(plan, name, source, call.result, failed)

    # --- decorating -------------------------------------------------------------------------------

    def _site(self, fn: Callable[..., Any]) -> _Site:
        name = getattr(fn, "__name__", None) or type(fn).__name__
        from_args = dict(self._from_args)
        string_values = {k: v for k, v in self._values.items() if isinstance(v, str | after)}
        signature: inspect.Signature | None = None
        needs_signature = bool(from_args or string_values) or type(self)._default_from_args is not (
            Instrumentation._default_from_args
        )
        if needs_signature:
            try:
                signature = inspect.signature(fn)
            except (TypeError, ValueError):
                signature = None
        for key, source in self._default_from_args(signature).items():
            from_args.setdefault(key, source)
        site = _Site(name, self._site_static(fn), signature)
        where = f"{name}{signature}" if signature is not None else name
        start: dict[str, list[tuple[str, Callable[..., object]]]] = {"args": [], "values": []}
        end: dict[str, list[tuple[str, Callable[..., object]]]] = {"args": [], "values": []}
        for group, sources, setting in (
            ("args", from_args, "from_args[{key!r}]"),
            ("values", string_values, "{key}=..."),
        ):
            for key, source in sources.items():
                late = isinstance(source, after) or (group == "values" and self._values_after)
                raw = source.source if isinstance(source, after) else source
                where_setting = f"{self._name}({setting.format(key=key)})"
                (end if late else start)[group].append((key, extract.compile_arg(signature, raw, where_setting, where)))
        site.arg_getters, site.value_getters = tuple(start["args"]), tuple(start["values"])
        site.after_arg_getters, site.after_value_getters = tuple(end["args"]), tuple(end["values"])
        site.bound_needed = any(
            not isinstance(getter, extract.ArgGetter)
            for getters in (*start.values(), *end.values())
            for _, getter in getters
        )
        return site

    @overload
    def __call__(self, fn: classmethod[T, P, R]) -> classmethod[T, P, R]: ...
    @overload
    def __call__(self, fn: staticmethod[P, R]) -> staticmethod[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Any) -> Any:
        """Decorate ``fn``: a function, coroutine function, generator, async generator or method.

        Applied on top of ``@classmethod`` or ``@staticmethod``, it wraps the
        underlying function and returns the same kind of descriptor.
        """
        if isinstance(fn, classmethod | staticmethod):
            return type(fn)(self(fn.__func__))
        if not callable(fn):
            raise ConfigurationError(f"{self._name}(...)", fn, "a function, method, classmethod or staticmethod")
        site = self._site(fn)
        begin, end = self._begin, self._end

        if inspect.isasyncgenfunction(fn):

            async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
                call = begin(site, args, kwargs)
                agen = fn(*args, **kwargs)
                try:
                    item = await agen.__anext__()
                    while True:
                        try:
                            sent = yield item
                        except GeneratorExit:
                            await agen.aclose()
                            raise
                        except BaseException as thrown:
                            item = await agen.athrow(thrown)
                        else:
                            item = await agen.asend(sent)
                except (StopAsyncIteration, GeneratorExit) as stop:
                    end(call, None, None, returned=True)
                    if isinstance(stop, GeneratorExit):
                        raise
                except BaseException as error:
                    end(call, None, error, returned=False)
                    raise

            wrapper: Callable[..., Any] = agen_wrapper
        elif inspect.isgeneratorfunction(fn):

            def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                call = begin(site, args, kwargs)
                try:
                    result = yield from fn(*args, **kwargs)
                except GeneratorExit:
                    end(call, None, None, returned=True)
                    raise
                except BaseException as error:
                    end(call, None, error, returned=False)
                    raise
                end(call, result, None, returned=True)
                return result

            wrapper = gen_wrapper
        elif inspect.iscoroutinefunction(fn):

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                call = begin(site, args, kwargs)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as error:
                    end(call, None, error, returned=False)
                    raise
                end(call, result, None, returned=True)
                return result

            wrapper = async_wrapper
        else:

            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                call = begin(site, args, kwargs)
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:
                    end(call, None, error, returned=False)
                    raise
                end(call, result, None, returned=True)
                return result

            wrapper = sync_wrapper
        wrapped = functools.wraps(fn)(wrapper)
        wrapped.__tradetel__ = self  # type: ignore[attr-defined]
        return wrapped

    # --- context manager --------------------------------------------------------------------------

    def __enter__(self) -> Call:
        strings = [k for k, v in self._values.items() if isinstance(v, str | after)]
        if self._from_args or strings:
            raise ConfigurationError(
                f"{self._name}(from_args=...)",
                sorted({*self._from_args, *strings}),
                "static values in a with block (there are no arguments to read): pass them directly or call.set()",
            )
        call = self._begin(self._cm_site, (), {})
        _OPEN.set((*_OPEN.get(), call))
        return call

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack = _OPEN.get()
        for index in range(len(stack) - 1, -1, -1):
            call = stack[index]
            if call._site is self._cm_site:
                _OPEN.set(stack[:index] + stack[index + 1 :])
                break
        else:  # pragma: no cover - __exit__ without __enter__ in this context
            return
        self._end(call, None, exc, returned=False)

    async def __aenter__(self) -> Call:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        attributes = ", ".join(f"{k}={v!r}" for k, v in self._static.items())
        return f"<{self._name}({attributes})>"


def _result_reader(setting: str, source: ResultSource) -> Callable[[Any], object]:
    if isinstance(source, str):
        if not source or any(not part.isidentifier() for part in source.split(".")):
            raise ConfigurationError(setting, source, "a field path of the result such as 'side' or 'info.fee'")
        path = tuple(source.split("."))
        return lambda result: extract.field(result, path)
    if callable(source):
        return source
    raise ConfigurationError(setting, source, "a field path (str) or a callable receiving the result")


def _emit(
    call: Call,
    plan: _Plan,
    method: str,
    role: str,
    value: float,
    attributes: Mapping[str, object] | None = None,
    **closed: object,
) -> None:
    """Record through a series bound once when the attributes are the static ones, else through the handle.

    ``closed`` values must come from small closed sets (a status), since each one binds a series.
    """
    attributes = call.attributes if attributes is None else attributes
    if attributes is call._site.static:
        getattr(call._site.series(plan, role, **closed), method)(value)
    else:
        getattr(plan, method)(role, value, attributes, **closed)


def _failed(exc: BaseException | None) -> bool:
    """An ordinary failure; cancellation, interpreter exit and generator close are not counted as errors."""
    return isinstance(exc, Exception)


# --- generic decorators ----------------------------------------------------------------------------


class _Generic(Instrumentation):
    _kinds: ClassVar[tuple[Kind, ...]] = ()

    def __init__(
        self,
        instrument: str | Instrument,
        /,
        *,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        from_result: Mapping[str, ResultSource] | None = None,
        **attributes: object,
    ) -> None:
        if not isinstance(instrument, str | Instrument):
            raise ConfigurationError(f"{self._name}(instrument)", instrument, "a catalog name or an instrument handle")
        self._instrument = instrument
        super().__init__(telemetry=telemetry, attributes=attributes, from_args=from_args, from_result=from_result)

    def _roles(self) -> dict[str, tuple[str | Instrument, tuple[Kind, ...]]]:
        return {"main": (self._instrument, self._kinds)}

    def __repr__(self) -> str:
        name = self._instrument if isinstance(self._instrument, str) else self._instrument.name
        attributes = "".join(f", {k}={v!r}" for k, v in self._static.items())
        return f"<{self._name}({name!r}{attributes})>"


class timed(_Generic):  # noqa: N801 - a decorator reads as a function
    """Record each call's duration in seconds into a histogram.

    Args:
        instrument: catalog name (``"orders.latency"``) or histogram handle.
        telemetry: where to record; default :func:`tradetel.get_default` at call time.
        from_args: attribute key → parameter name (dotted path allowed) or callable of the bound arguments.
        from_result: attribute key → result field path or callable of the result (only when the call returns).
        **attributes: static attribute values.

    Example::

        @timed("strategy.stage.duration", strategy="grid", stage="signals")
        def compute_signals(candles): ...

        with timed("strategy.stage.duration", strategy="grid", stage="risk", telemetry=tel):
            check_risk()
    """

    _name = "timed"
    _kinds = (Kind.HISTOGRAM,)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        _emit(call, plan, "record", "main", duration)


class counted(_Generic):  # noqa: N801 - a decorator reads as a function
    """Add 1 to a counter each time a call completes, whether it returns or raises.

    Args: as :class:`timed`, with a counter.

    Example::

        @counted("orders.filled", exchange="binance", from_result={"symbol": "symbol", "side": "side"})
        def on_fill(event): ...
    """

    _name = "counted"
    _kinds = (Kind.COUNTER, Kind.UP_DOWN_COUNTER)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        _emit(call, plan, "add", "main", 1)


class in_flight(_Generic):  # noqa: N801 - a decorator reads as a function
    """Hold +1 on an up-down counter while a call (or a generator's iteration) runs.

    Args: as :class:`timed`, with an up-down counter; no ``from_result`` (the
    same attributes must go up and down).

    Example::

        @in_flight("signals.in_flight", source="tradingview")
        async def handle(payload): ...
    """

    _name = "in_flight"
    _kinds = (Kind.UP_DOWN_COUNTER,)

    def __init__(
        self,
        instrument: str | Instrument,
        /,
        *,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        **attributes: object,
    ) -> None:
        super().__init__(instrument, telemetry=telemetry, from_args=from_args, from_result=None, **attributes)

    def _enter(self, call: Call, plan: _Plan) -> None:
        call.entered = call.attributes
        _emit(call, plan, "add", "main", 1)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        _emit(call, plan, "add", "main", -1, call.entered)


class count_exceptions(_Generic):  # noqa: N801 - a decorator reads as a function
    """Count exceptions escaping a call, with ``error_type`` folded to a canonical type when the counter has that key.

    The error type is the exception's class name and message categorised by
    :data:`tradetel.labels.ERROR_TYPE` (``timeout``, ``rate_limit``,
    ``auth_error``, ``not_found``, ``server_error``, ``connection_error``,
    ``invalid_request`` or ``other``). The exception is re-raised unchanged.

    Args:
        instrument: catalog name or counter handle, e.g. ``"exchange.errors"``.
        exceptions: the exception class (or tuple) to count; default :class:`Exception`.
        telemetry, from_args, **attributes: as :class:`timed`.

    Example::

        @count_exceptions("exchange.errors", exchange="kraken", endpoint="fetch_balance")
        def fetch_balance(): ...
    """

    _name = "count_exceptions"
    _kinds = (Kind.COUNTER,)

    def __init__(
        self,
        instrument: str | Instrument,
        /,
        *,
        exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        **attributes: object,
    ) -> None:
        self._exceptions = exceptions
        super().__init__(instrument, telemetry=telemetry, from_args=from_args, from_result=None, **attributes)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        if exc is None or not isinstance(exc, self._exceptions):
            return
        if "error_type" in plan.keys["main"]:
            plan.add("main", 1, call.attributes, error_type=extract.error_type(exc))
        else:
            plan.add("main", 1, call.attributes)


# --- trading decorators ----------------------------------------------------------------------------

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
        plan.add("submitted", 1, call.attributes)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        if exc is not None:
            if _failed(exc):
                plan.add("rejected", 1, call.attributes, reason=extract.error_text(exc))
            return
        read = self._placed_order(call, plan)
        order = read if isinstance(read, OrderInfo) else None
        attributes = _order_attributes(call.attributes, order)
        plan.record("latency", duration, attributes, stage="ack")
        if isinstance(read, str | _Failed) and call.reason is None:  # its outcome, notional and slippage are lost
            if isinstance(read, str):
                plan.unreadable(f"{self._name}({call._site.name})", "unreadable_order", read)
            return
        outcome = "rejected" if call.reason is not None else order.outcome if order is not None else None
        if outcome == "rejected":
            plan.add("rejected", 1, attributes, reason=call.reason or "rejected")
        elif outcome == "filled":
            plan.add("filled", 1, attributes)
        elif outcome == "partial":
            plan.add("partial", 1, attributes)
        if order is None:
            return
        notional = order.notional
        if notional is not None:
            plan.record("notional", notional, attributes)
        if order.filled is not None and order.filled <= 0:
            return
        reference = extract.number(self._value(call, plan, "reference_price"))
        side = order.side or _text_or_none(attributes.get("side"))
        slippage = extract.slippage_bp(side, order.average, reference)
        if slippage is not None:
            plan.record("slippage", slippage, attributes)


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
        plan.add("cancelled", 1, attributes)
        plan.record("latency", duration, attributes, stage="cancel")


_STREAKS: weakref.WeakKeyDictionary[Telemetry, dict[str, int]] = weakref.WeakKeyDictionary()
_STREAK_LOCK = threading.Lock()
renew_after_fork(__name__, "_STREAK_LOCK")  # taken on every decorated call
_NO_TELEMETRY_STREAKS: dict[str, int] = {}


def _streak(telemetry: Telemetry | None, exchange: str, failed: bool) -> int:
    """Consecutive errors per exchange and Telemetry, shared by every decorated call of that exchange."""
    with _STREAK_LOCK:
        streaks = _NO_TELEMETRY_STREAKS if telemetry is None else _STREAKS.setdefault(telemetry, {})
        value = streaks.get(exchange, 0) + 1 if failed else 0
        streaks[exchange] = value
        return value


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
        _emit(call, plan, "record", "duration", duration)
        if exc is not None and not _failed(exc):
            return
        failed = exc is not None
        _emit(call, plan, "add", "requests", 1, status="error" if failed else "ok")
        if exc is not None:
            plan.add("errors", 1, call.attributes, error_type=extract.error_text(exc))
        streak = _streak(plan.telemetry, _key_text(call.attributes.get("exchange")), failed)
        _emit(call, plan, "set", "streak", streak)


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
        plan.add("closed", 1, call.attributes, outcome=outcome)
        if trade.r_multiple is not None:
            plan.record("r_multiple", trade.r_multiple, call.attributes)
        if trade.pnl is not None:
            plan.add("pnl", trade.pnl, call.attributes)

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
        _emit(call, plan, "record", "duration", duration)
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
        plan.add("cycles", 1, call.attributes, status=status)


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
        _emit(call, plan, "record", "duration", duration)


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
        plan.add("in_flight", 1, call.attributes)

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
        plan.add("in_flight", -1, call.entered if call.entered is not None else call.attributes)
        reason = self._reason(call, plan, exc)
        if reason is not None:
            status = "rejected"
            plan.add("rejected", 1, call.attributes, reason=reason)
        elif exc is not None:
            status = "error"
        else:
            status = "ok"
        plan.add("received", 1, call.attributes)
        plan.record("duration", duration, call.attributes, status=status)


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
