"""The decorator framework: :class:`Instrumentation`, :class:`Call`, argument readers and the one way to record.

A decorator subclass names its instruments by role (``_roles``), reads what
it needs when a call starts (``_enter``) and ends (``_exit``), and records
every measurement through :func:`emit` (see the rule in
:mod:`tradetel.decorators`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from contextvars import ContextVar
from time import perf_counter
from types import TracebackType
from typing import Any, ClassVar, ParamSpec, TypeVar, overload

from .. import _extractors as extract
from .._instruments import BoundSeries, Instrument
from ..catalog import Kind
from ..errors import ConfigurationError, MeasurementError
from ..telemetry import Telemetry, get_default

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

_logger = logging.getLogger("tradetel")
_OPEN: ContextVar[tuple[Call, ...]] = ContextVar("tradetel_open_calls", default=())


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


def emit(
    call: Call,
    plan: _Plan,
    method: str,
    role: str,
    value: float,
    attributes: Mapping[str, object] | None = None,
    *,
    detail: Mapping[str, object] | None = None,
    **closed: object,
) -> None:
    """Record one measurement of a decorated call: the only way a decorator records.

    ``attributes`` default to the call's. ``closed`` attributes come from small
    closed sets (a status, a stage); ``detail`` attributes from open ones (an
    error text, a rejection reason, a value read from the result). When the
    attributes are the decoration's static ones and there is no ``detail``,
    the measurement goes through a series bound once per role and closed
    values; otherwise through the handle, whose label policies fold what
    they must.
    """
    attributes = call.attributes if attributes is None else attributes
    if detail is None and attributes is call._site.static:
        getattr(call._site.series(plan, role, **closed), method)(value)
    elif detail is None:
        getattr(plan, method)(role, value, attributes, **closed)
    else:
        getattr(plan, method)(role, value, attributes, **closed, **detail)


def _failed(exc: BaseException | None) -> bool:
    """An ordinary failure; cancellation, interpreter exit and generator close are not counted as errors."""
    return isinstance(exc, Exception)
