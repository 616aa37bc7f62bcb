"""Small readers used by the decorators: argument paths, the ccxt order structure, trade results, error text.

Everything here is pure and never raises on odd input: a field that is
missing, ``None`` or not a finite number reads as ``None``, and the caller
records nothing for it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from numbers import Real
from typing import Any, TypeVar

from .errors import ConfigurationError
from .labels import ERROR_TYPE

__all__ = [
    "ArgGetter",
    "OrderInfo",
    "TradeInfo",
    "UnreadableError",
    "ccxt_order",
    "compile_arg",
    "error_text",
    "error_type",
    "field",
    "number",
    "read_order",
    "read_trade",
    "slippage_bp",
    "trade_result",
]

_MISSING: Any = object()
T = TypeVar("T")


def field(value: object, path: tuple[str, ...]) -> Any:
    """Follow ``path`` through mapping keys or attributes; ``None`` as soon as a step is missing."""
    for part in path:
        if value is None:
            return None
        value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
    return value


def number(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` (strings such as ``"0.5"`` are accepted; booleans are not)."""
    try:
        if value is None or isinstance(value, bool):
            return None
        result = float(value)  # type: ignore[arg-type]
    except Exception:  # not a number, or a lazy one whose __float__ fails: unknown, like any unreadable field
        return None
    return result if math.isfinite(result) else None


class ArgGetter:
    """Reads one argument of a call by parameter name (then a dotted path inside it), without binding the signature.

    Compiled once at decoration: the parameter's position, whether it can be
    passed by keyword, and its default.
    """

    __slots__ = ("default", "index", "keyword", "name", "path", "variadic")

    def __init__(self, signature: inspect.Signature | None, source: str, setting: str, where: str) -> None:
        name, *rest = source.split(".")
        self.name = name
        self.path = tuple(rest)
        self.index: int | None = None
        self.keyword = True
        self.default: Any = None
        self.variadic = False
        if signature is None:
            return
        parameters = list(signature.parameters.values())
        found = signature.parameters.get(name)
        if found is None:
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
                accepted = ", ".join(signature.parameters) or "(no parameters)"
                raise ConfigurationError(setting, source, f"a parameter of {where}: {accepted}")
            return  # may arrive through **kwargs
        if found.kind is inspect.Parameter.VAR_POSITIONAL or found.kind is inspect.Parameter.VAR_KEYWORD:
            self.variadic = True
            self.keyword = False
            self.index = parameters.index(found)
            return
        if found.kind is not inspect.Parameter.KEYWORD_ONLY:
            self.index = parameters.index(found)
        self.keyword = found.kind is not inspect.Parameter.POSITIONAL_ONLY
        if found.default is not inspect.Parameter.empty:
            self.default = found.default

    def __call__(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        if self.variadic:
            value: Any = args[self.index :] if self.index is not None else None
        elif self.keyword and self.name in kwargs:
            value = kwargs[self.name]
        elif self.index is not None and self.index < len(args):
            value = args[self.index]
        elif self.index is None and self.name in kwargs:
            value = kwargs[self.name]
        else:
            value = self.default
        return field(value, self.path) if self.path else value


def compile_arg(
    signature: inspect.Signature | None, source: str | Callable[[Mapping[str, Any]], object], setting: str, where: str
) -> ArgGetter | Callable[[Mapping[str, Any]], object]:
    """A parameter path becomes an :class:`ArgGetter`; a callable is kept (it receives the bound arguments)."""
    if isinstance(source, str):
        if not source or any(not part.isidentifier() for part in source.split(".")):
            raise ConfigurationError(setting, source, "a parameter name, optionally with a dotted path: 'order.symbol'")
        return ArgGetter(signature, source, setting, where)
    if callable(source):
        return source
    raise ConfigurationError(setting, source, "a parameter name (str) or a callable receiving the call's arguments")


# --- orders ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """The fields of an order that the order decorators read, in ccxt's unified vocabulary."""

    status: str | None = None
    filled: float | None = None
    amount: float | None = None
    average: float | None = None
    price: float | None = None
    side: str | None = None
    symbol: str | None = None
    type: str | None = None
    cost: float | None = None

    @property
    def outcome(self) -> str | None:
        """``filled``, ``partial``, ``rejected`` or ``None`` (resting, unknown, cancelled unfilled)."""
        status = (self.status or "").lower()
        if status == "rejected":
            return "rejected"
        filled, amount = self.filled, self.amount
        if filled is not None and amount is not None and amount > 0:
            if filled >= amount * (1 - 1e-9):
                return "filled"
            if filled > 0:
                return "partial"
            return None
        if status == "closed":
            return "filled"
        if filled is not None and filled > 0:
            return "partial"
        return None

    @property
    def notional(self) -> float | None:
        """Quantity times price in quote currency: amount (else filled) times average (else limit price)."""
        price = self.average if self.average else self.price
        quantity = self.amount if self.amount else self.filled
        if price and quantity:
            return abs(quantity * price)
        return abs(self.cost) if self.cost else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class UnreadableError(ValueError):
    """A default reader could not read what the call returned; the message says what is missing or wrong."""


_ORDER_TEXT = ("status", "side", "symbol", "type")
_ORDER_NUMBERS = ("filled", "amount", "average", "price", "cost")


def _getter(result: object) -> Callable[[str], Any]:
    if isinstance(result, Mapping):
        get: Callable[[str], Any] = result.get
        return get

    def attribute(key: str) -> Any:
        return getattr(result, key, None)

    return attribute


def _read_field(get: Callable[[str], Any], key: str, problems: list[str]) -> Any:
    try:
        return get(key)
    except Exception as error:  # a property or __getattr__ that raises, a mapping whose get() fails
        problems.append(f"reading {key!r} raised {type(error).__name__}")
        return None


def _strict_text(key: str, value: object, problems: list[str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    problems.append(f"{key} is a {type(value).__name__}, not text")
    return None


def _strict_number(key: str, value: object, problems: list[str]) -> float | None:
    if value is None:
        return None
    result = number(value)
    if result is None:
        problems.append(f"{key} is not a finite number ({type(value).__name__})")
    return result


def _never_raises(read: Callable[[object], T]) -> Callable[[object], T]:
    """Turn any exception of a strict reader (a hostile ``__class__``, ``isinstance`` hooks) into UnreadableError."""

    def reader(result: object) -> T:
        try:
            return read(result)
        except UnreadableError:
            raise
        except Exception as error:
            raise UnreadableError(f"reading a {type(result).__name__} raised {type(error).__name__}") from error

    reader.__name__ = read.__name__
    reader.__doc__ = read.__doc__
    return reader


@_never_raises
def read_order(result: object) -> OrderInfo:
    """Read a ccxt unified order structure, or raise :class:`UnreadableError` saying what is missing or wrong.

    Every field present must have its type (text, or a finite number; numeric strings are accepted),
    and at least one of ``status``, ``filled`` and ``amount`` must be known: an order that says none of
    them cannot be classified as filled, partial or rejected.
    """
    if isinstance(result, OrderInfo):
        return result
    if result is None:
        raise UnreadableError("the call returned None, not an order")
    get = _getter(result)
    problems: list[str] = []
    raw = {key: _read_field(get, key, problems) for key in (*_ORDER_TEXT, *_ORDER_NUMBERS)}
    texts = {key: _strict_text(key, raw[key], problems) for key in _ORDER_TEXT}
    numbers = {key: _strict_number(key, raw[key], problems) for key in _ORDER_NUMBERS}
    if problems:
        raise UnreadableError("; ".join(problems))
    order = OrderInfo(
        status=texts["status"],
        filled=numbers["filled"],
        amount=numbers["amount"],
        average=numbers["average"],
        price=numbers["price"],
        side=texts["side"],
        symbol=texts["symbol"],
        type=texts["type"],
        cost=numbers["cost"],
    )
    if order.status is None and order.filled is None and order.amount is None:
        raise UnreadableError(f"a {type(result).__name__} with no status, filled or amount")
    return order


def ccxt_order(result: object) -> OrderInfo | None:
    """Read a ccxt unified order structure (a dict, or any object with the same attribute names).

    Fields read: ``status``, ``filled``, ``amount``, ``average``, ``price``,
    ``side``, ``symbol``, ``type`` and ``cost``. Lenient: a field that is
    missing or of the wrong type reads as ``None``. (The decorators' default
    reader is stricter: see :func:`read_order`.)
    """
    if result is None:
        return None
    if isinstance(result, OrderInfo):
        return result
    get = _getter(result)

    def read(key: str) -> Any:
        try:
            return get(key)
        except Exception:
            return None

    return OrderInfo(
        status=_text(read("status")),
        filled=number(read("filled")),
        amount=number(read("amount")),
        average=number(read("average")),
        price=number(read("price")),
        side=_text(read("side")),
        symbol=_text(read("symbol")),
        type=_text(read("type")),
        cost=number(read("cost")),
    )


def slippage_bp(side: str | None, average: float | None, reference: float | None) -> float | None:
    """Signed slippage in basis points, positive when the fill is worse than ``reference``.

    Buy: ``(average - reference) / reference * 1e4``; sell: the opposite sign.
    ``None`` when the side is unknown or a price is missing.
    """
    if average is None or reference is None or reference <= 0:
        return None
    side = (side or "").lower()
    if side in ("buy", "long", "bid"):
        sign = 1.0
    elif side in ("sell", "short", "ask"):
        sign = -1.0
    else:
        return None
    return sign * (average - reference) / reference * 1e4


# --- trades ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradeInfo:
    """What a closed trade reports: R-multiple, realised PnL and, when known, an explicit outcome."""

    r_multiple: float | None = None
    pnl: float | None = None
    outcome: str | None = None

    def classify(self, breakeven: float) -> str | None:
        """``win``, ``loss`` or ``breakeven`` from the explicit outcome, else PnL, else R; ``None`` if unknown."""
        if self.outcome:
            return self.outcome
        value = self.pnl if self.pnl is not None else self.r_multiple
        if value is None:
            return None
        if abs(value) <= breakeven:
            return "breakeven"
        return "win" if value > 0 else "loss"


_R_FIELDS = ("r_multiple", "r", "rr")
_PNL_FIELDS = ("pnl", "realized_pnl", "realised_pnl", "profit")


def trade_result(result: object) -> TradeInfo | None:
    """Read a closed trade: a bare number is its R-multiple; a mapping or object gives its fields.

    Fields read: ``r_multiple`` (or ``r``, ``rr``), ``pnl`` (or ``realized_pnl``,
    ``realised_pnl``, ``profit``) and ``outcome``. ``None`` when the trade
    cannot be read (see :func:`read_trade` for what that means).
    """
    try:
        return read_trade(result)
    except UnreadableError:
        return None


@_never_raises
def read_trade(result: object) -> TradeInfo:
    """Read a closed trade like :func:`trade_result`, or raise :class:`UnreadableError` saying what is wrong.

    The first field present of each group must be a finite number (``outcome``: text), and at least
    one of R, PnL and outcome must be known.
    """
    if isinstance(result, TradeInfo):
        return result
    if result is None:
        raise UnreadableError("the call returned None, not a trade")
    if isinstance(result, bool):
        raise UnreadableError("the call returned a bool, not a trade")
    if isinstance(result, Real | Decimal):  # numpy scalars and Fractions too
        direct = number(result)
        if direct is None:
            raise UnreadableError(f"the call returned {type(result).__name__} that is not a finite number")
        return TradeInfo(r_multiple=direct)
    get = _getter(result)
    problems: list[str] = []
    found: dict[str, float | None] = {}
    for group, names in (("r_multiple", _R_FIELDS), ("pnl", _PNL_FIELDS)):
        found[group] = None
        for name in names:
            value = _read_field(get, name, problems)
            if value is not None:
                found[group] = _strict_number(name, value, problems)
                break
    outcome = _strict_text("outcome", _read_field(get, "outcome", problems), problems)
    if problems:
        raise UnreadableError("; ".join(problems))
    if found["r_multiple"] is None and found["pnl"] is None and outcome is None:
        raise UnreadableError(f"a {type(result).__name__} with no r_multiple, pnl or outcome")
    return TradeInfo(r_multiple=found["r_multiple"], pnl=found["pnl"], outcome=outcome)


# --- errors ----------------------------------------------------------------------------------------

_ERROR_TYPE = ERROR_TYPE.build()


def error_text(exc: BaseException) -> str:
    """The exception's class name and message, the text that reason and error-type policies categorise.

    Never raises: when the exception cannot be rendered (its ``__str__`` raises), the class name alone
    is categorised, so the error is still counted.
    """
    name = type(exc).__name__
    try:
        message = str(exc)
    except Exception:
        return name
    return f"{name}: {message}"[:256] if message else name


def error_type(exc: BaseException) -> str:
    """The exception folded to a canonical error type (:data:`tradetel.labels.ERROR_TYPE`): timeout, rate_limit..."""
    return _ERROR_TYPE(error_text(exc))
