"""Instrument methods of objects and classes you do not own, and undo it.

:func:`instrument_methods` wraps chosen methods of an existing object or
class with decorators, without editing its source; the returned
:class:`Instrumented` puts everything back with :meth:`~Instrumented.undo`
(or at the end of a ``with`` block). :func:`instrument_ccxt` does it for a
ccxt exchange instance (sync or ``ccxt.async_support``).

Example::

    import ccxt
    from tradetel.retrofit import instrument_ccxt

    exchange = ccxt.binance({"apiKey": ..., "secret": ...})
    instrument_ccxt(exchange, telemetry=tel)
    exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 60_000)   # orders.*, exchange.*
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any

from .decorators import ValueSource, exchange_call, order_cancel, order_placement
from .errors import ConfigurationError
from .telemetry import Telemetry

__all__ = ["Instrumented", "instrument_ccxt", "instrument_methods"]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
_MISSING: Any = object()


class Instrumented:
    """The methods :func:`instrument_methods` replaced; :meth:`undo` restores them (idempotent).

    One handle may hold methods of several objects or classes (``into=``); each is put back on the
    object it was taken from.

    Example::

        with instrument_methods(bot, {"run_cycle": strategy_cycle(strategy="grid")}):
            bot.run()
    """

    def __init__(self, target: object) -> None:
        self.target = target
        self._saved: list[tuple[object, str, object]] = []

    @property
    def methods(self) -> tuple[str, ...]:
        """Names of the replaced attributes, in the order they were replaced."""
        return tuple(name for _, name, _ in self._saved)

    def _replace(self, name: str, new: object, target: object = _MISSING) -> None:
        owner = self.target if target is _MISSING else target
        holder = owner.__dict__ if hasattr(owner, "__dict__") else {}
        self._saved.append((owner, name, holder.get(name, _MISSING)))
        try:
            setattr(owner, name, new)
        except (AttributeError, TypeError):
            self._saved.pop()
            raise ConfigurationError(
                f"instrument_methods[{name!r}]",
                type(owner).__name__,
                "an object whose attributes can be set (instrument its class instead)",
            ) from None

    def undo(self) -> None:
        """Put back every replaced attribute, newest first."""
        while self._saved:
            owner, name, previous = self._saved.pop()
            if previous is _MISSING:
                try:
                    delattr(owner, name)
                except AttributeError:
                    pass
            else:
                setattr(owner, name, previous)

    def __enter__(self) -> Instrumented:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.undo()

    def __repr__(self) -> str:
        groups: dict[int, tuple[object, list[str]]] = {id(self.target): (self.target, [])}
        for owner, name, _ in self._saved:
            groups.setdefault(id(owner), (owner, []))[1].append(name)
        return "<Instrumented " + ", ".join(f"{_describe(o)} methods={names}" for o, names in groups.values()) + ">"


def _check_method(target: object, name: str) -> object:
    try:
        raw = inspect.getattr_static(target, name)
    except AttributeError:
        raise ConfigurationError(f"instrument_methods[{name!r}]", name, f"a method of {_describe(target)}") from None
    if not (callable(raw) or isinstance(raw, classmethod | staticmethod)):
        raise ConfigurationError(f"instrument_methods[{name!r}]", name, f"a method of {_describe(target)}")
    return raw


def _describe(target: object) -> str:
    return target.__name__ if isinstance(target, type) else type(target).__name__


def _wrap(target: object, name: str, decorators: Iterable[Decorator]) -> object:
    raw = _check_method(target, name)
    if isinstance(target, type):
        # On a class, wrap the descriptor itself so that methods, classmethods and staticmethods keep their binding.
        wrapped: Any = raw
    else:
        wrapped = getattr(target, name)  # a bound method: the decorator sees the signature without self
    for decorate in decorators:
        wrapped = decorate(wrapped)
    return wrapped


def instrument_methods(
    target: object, methods: Mapping[str, Decorator | Iterable[Decorator]], *, into: Instrumented | None = None
) -> Instrumented:
    """Wrap methods of an object or class with decorators; returns an :class:`Instrumented` to undo it.

    Args:
        target: an instance (its bound methods are wrapped and set on the
            instance only) or a class (the methods are wrapped for every
            instance; classmethods and staticmethods keep their kind).
        methods: method name → a decorator, or several applied innermost first.
        into: add to an existing :class:`Instrumented` instead of a new one; ``target``
            may differ from the one it was made for (its ``undo()`` restores both).

    Raises:
        ConfigurationError: a name is not a method of ``target``, or the
            target's attributes cannot be set. Nothing is replaced then.

    Example::

        handle = instrument_methods(client, {
            "fetch_ticker": exchange_call(exchange="kraken"),
            "place": [exchange_call(exchange="kraken"), order_placement(exchange="kraken")],
        })
        ...
        handle.undo()
    """
    plan: list[tuple[str, list[Decorator]]] = []
    for name, decorators in methods.items():
        _check_method(target, name)
        chain = [decorators] if callable(decorators) else list(decorators)
        plan.append((name, chain))
    if into is not None and not isinstance(into, Instrumented):
        raise ConfigurationError("instrument_methods(into=...)", type(into).__name__, "an Instrumented, or None")
    instrumented = into if into is not None else Instrumented(target)
    for name, chain in plan:
        instrumented._replace(name, _wrap(target, name, chain), target)
    return instrumented


# --- ccxt ------------------------------------------------------------------------------------------

_ACTIVE: ContextVar[frozenset[int]] = ContextVar("tradetel_ccxt_active", default=frozenset())


def _outermost(instrumented: Callable[..., Any], original: Callable[..., Any], key: int) -> Callable[..., Any]:
    """Record only the outermost call: ccxt methods call each other (fetch_l2_order_book → fetch_order_book)."""
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            active = _ACTIVE.get()
            if key in active:
                return await original(*args, **kwargs)
            token = _ACTIVE.set(active | {key})
            try:
                return await instrumented(*args, **kwargs)
            finally:
                _ACTIVE.reset(token)

        return run_async

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        active = _ACTIVE.get()
        if key in active:
            return original(*args, **kwargs)
        token = _ACTIVE.set(active | {key})
        try:
            return instrumented(*args, **kwargs)
        finally:
            _ACTIVE.reset(token)

    return run


def ccxt_fetch_methods(exchange: object) -> list[str]:
    """The unified ``fetch_*`` methods of a ccxt exchange instance (not the raw ``fetch`` HTTP call)."""
    return sorted(
        name
        for name in dir(type(exchange))
        if name.startswith("fetch_") and callable(inspect.getattr_static(exchange, name, None))
    )


def instrument_ccxt(
    exchange: Any,
    /,
    *,
    telemetry: Telemetry | None = None,
    fetch: bool | Iterable[str] = True,
    reference_price: ValueSource | None = "price",
    **attributes: object,
) -> Instrumented:
    """Instrument a ccxt exchange instance: orders, cancels and every ``fetch_*`` call.

    - ``create_order`` (when the exchange has it): :class:`~tradetel.decorators.order_placement` (submitted,
      filled/partial/rejected from the returned unified order, latency,
      notional, slippage against ``reference_price``) inside an
      :class:`~tradetel.decorators.exchange_call` (requests, duration,
      errors, error streak) with ``endpoint="create_order"``;
    - ``cancel_order`` (when the exchange has it): :class:`~tradetel.decorators.order_cancel` and ``exchange_call``;
    - ``fetch_*`` (all, or the names given in ``fetch``): ``exchange_call``.

    The ``exchange`` attribute is ``exchange.id``. ccxt methods call one
    another (``create_market_buy_order`` → ``create_order``,
    ``fetch_l2_order_book`` → ``fetch_order_book``); only the outermost
    instrumented call is recorded, so one call of yours counts once.
    camelCase aliases (``createOrder``) are replaced too. Works for sync
    exchanges and ``ccxt.async_support`` ones.

    Args:
        exchange: a ccxt exchange instance (or any object shaped like one).
        telemetry: where to record; default :func:`tradetel.get_default` at call time.
        fetch: ``True`` for every ``fetch_*`` method, ``False`` for none, or the names to wrap.
        reference_price: slippage reference for ``create_order``; default its
            ``price`` argument (limit orders), see ``order_placement``.
        **attributes: static attributes for every measurement, e.g. ``exchange="binance-sub1"`` instead
            of ``exchange.id``.

    Returns:
        An :class:`Instrumented`; ``undo()`` restores the exchange.
    """
    exchange_id = attributes.pop("exchange", None) or getattr(exchange, "id", None) or type(exchange).__name__
    common: dict[str, Any] = {"exchange": exchange_id, **attributes}
    order_keys = {k: v for k, v in common.items() if k != "endpoint"}
    plan: dict[str, list[Decorator]] = {}
    if callable(getattr(exchange, "create_order", None)):
        plan["create_order"] = [
            exchange_call(telemetry=telemetry, endpoint="create_order", **common),
            order_placement(telemetry=telemetry, reference_price=reference_price, **order_keys),
        ]
    if callable(getattr(exchange, "cancel_order", None)):
        plan["cancel_order"] = [
            exchange_call(telemetry=telemetry, endpoint="cancel_order", **common),
            order_cancel(telemetry=telemetry, **order_keys),
        ]
    if fetch is True:
        names: Iterable[str] = ccxt_fetch_methods(exchange)
    elif fetch is False:
        names = ()
    else:
        names = list(fetch)
    for name in names:
        plan[name] = [exchange_call(telemetry=telemetry, endpoint=name, **common)]
    key = id(exchange)
    for name in list(plan):
        _check_method(exchange, name)
    aliases = _aliases(type(exchange), plan)
    instrumented = Instrumented(exchange)
    for name, chain in plan.items():
        original = getattr(exchange, name)
        wrapped: Callable[..., Any] = original
        for decorate in chain:
            wrapped = decorate(wrapped)
        installed = _outermost(wrapped, original, key)
        instrumented._replace(name, installed)
        for alias in aliases.get(name, ()):
            instrumented._replace(alias, installed)
    return instrumented


def _aliases(cls: type, names: Iterable[str]) -> dict[str, list[str]]:
    """Other class attributes bound to the same function (ccxt's camelCase names: ``fetchOHLCV``)."""
    wanted = {id(inspect.getattr_static(cls, name, None)): name for name in names}
    found: dict[str, list[str]] = {}
    for attribute in dir(cls):
        value = inspect.getattr_static(cls, attribute, None)
        name = wanted.get(id(value))
        if name is not None and attribute != name and value is not None:
            found.setdefault(name, []).append(attribute)
    return found
