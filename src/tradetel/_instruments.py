"""Recording handles: catalog instruments with label policies in front of OTel instruments.

A handle checks the value and the attribute keys against its catalog entry,
normalises attribute values through the entry's label policies, and records
into the SDK aggregation of the OpenTelemetry instrument (see ``_sdk``).
``bind(**attributes)`` resolves and checks the attributes once and returns a
series handle for hot loops.

The recording methods (``add``/``set``/``record``, unbound and bound) are
generated per catalog entry when the :class:`~tradetel.Telemetry` is built,
because a trading loop calls them on every tick. The generated method takes
the entry's attribute keys as keyword-only parameters (no ``**kwargs`` dict
to build and hash), checks ``int``/``float`` values with two comparisons,
and finds the series in a per-handle memo keyed by the raw values tuple.
The memo only stores calls whose values are all short ``str`` and that
neither folded a value nor landed in the overflow series, so a flood of junk
values cannot fill it and folds and overflow are still counted on every
call. Stateful policies such as :class:`~tradetel.labels.TopN`
(``cacheable = False``) are called on every call and their results compared
with the memoised ones. Everything else (other value types, unknown keys,
keys that are Python keywords) takes the plain path: normalise, look up,
write. Both paths end in the same aggregation update, so the exported data
cannot tell them apart.
"""

from __future__ import annotations

import functools
import keyword
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from numbers import Real
from time import perf_counter
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ._sdk import compile_function
from .catalog import InstrumentSpec, Kind

if TYPE_CHECKING:
    from ._exemplars import Exemplars
    from ._health import Health
    from ._sdk import SeriesStore
    from .labels import Normalizer

__all__ = ["BoundSeries", "Counter", "Gauge", "Histogram", "Instrument", "UpDownCounter"]

_INF = math.inf
_MAX_ABS = 1e300  # beyond this, sums overflow to inf after a few additions
_MEMO_MAX_TEXT = 256  # longer values are normalised per call instead of pinning big strings in the memo


class _Missing:
    """The default of an attribute keyword that was not passed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def check_value(value: object, health: Health, name: str, *, non_negative: bool) -> float | int | None:
    """Return ``value`` as a number fit to record, or ``None`` after counting why it was dropped."""
    kind = type(value)
    if kind is int:
        number: float | int = value  # type: ignore[assignment]
    elif kind is float:
        number = value  # type: ignore[assignment]
        if number != number:
            health.drop(name, "nan", value)
            return None
        if number in (_INF, -_INF):
            health.drop(name, "infinite", value)
            return None
    else:
        try:
            converted = _convert(value)
        except Exception as error:  # a lazy price type whose __float__ fails, a hostile __class__ or is_nan
            health.drop(name, "conversion_error", value, cause=error)
            return None
        if isinstance(converted, str):
            health.drop(name, converted, value)
            return None
        number = converted
    if number > _MAX_ABS or number < -_MAX_ABS:
        health.drop(name, "too_large", value)
        return None
    if non_negative and number < 0:
        health.drop(name, "negative", value)
        return None
    return number


def _convert(value: object) -> float | str:
    """A value other than an exact int or float as a finite float, or the reason it is dropped.

    Exceptions from the value's own methods (``__float__``, ``__index__``, ``is_nan``...) propagate:
    the caller drops the value as ``conversion_error``.
    """
    if isinstance(value, bool) or not isinstance(value, Real | Decimal):
        return "wrong_type"
    # numpy scalars, Fraction, Decimal, int/float subclasses
    if isinstance(value, Decimal) and value.is_nan():  # float() refuses a signalling NaN
        return "nan"
    try:
        number = float(value)
    except OverflowError:  # a Fraction or int subclass beyond float
        return "too_large"
    except (ArithmeticError, ValueError, TypeError):
        return "wrong_type"
    if not math.isfinite(number):
        if number != number:
            return "nan"
        if isinstance(value, Decimal) and value.is_finite():
            return "too_large"  # a finite Decimal beyond float converts to inf
        return "infinite"
    return number


# --- generated recording functions ----------------------------------------------------------------

# The value check every generated function starts with: ints and floats in range
# pass two comparisons (NaN and infinities fail them); anything else goes to
# check_value, which converts, or drops and counts.
_VALUE_CHECK = """\
        _t = _type(_value)
        if (_t is not _int and _t is not _float) or not {low} <= _value <= _MAX:
            _value = _check(_value)
            if _value is None:
                return
"""

_UNBOUND_SOURCE = """\
def _make(_memo, _resolve, _slow, _check, _M, _MAX, _agg_instrument{normalizers}):
    def {method}(_value{default}, /, {params}**_extra):
{value_check}\
        if _extra:
            _slow(_value, {key}, _extra)
            return
        _key = {key}
        try:
            {entry} = _memo[_key]
        except _ANY_ERROR:  # a miss, an unhashable value, or a value whose __hash__/__eq__ fails
            _agg = None
        if _agg is None:  # outside the except block: a failing policy must not show a KeyError as its context
            _resolve(_value, _key, None)
            return
{recheck}\
{write}\
    return {method}
"""

_BOUND_SOURCE = """\
def _make(_agg, _check, _overflowed, _on_overflow, _MAX, _agg_instrument):
    def {method}(_value{default}, /):
{value_check}\
        if _overflowed:
            _on_overflow()
{write}\
    return {method}
"""


# Builtins under underscore names: the generated parameters are catalog keys, and a key may be
# called ``type`` or ``float``.
_NAMES = {"_type": type, "_int": int, "_float": float, "_ANY_ERROR": Exception}


def _tuple_source(names: tuple[str, ...]) -> str:
    if not names:
        return "()"
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


@functools.lru_cache(maxsize=256)
def _unbound_factory(
    method: str, default: str, non_negative: bool, params: tuple[str, ...], stateful: tuple[int, ...], write: str
) -> Callable[..., Any]:
    """Compile (once per shape) the factory of an unbound recording method."""
    results = tuple(f"_r{i}" for i in range(len(stateful)))
    expected = tuple(f"_e{i}" for i in range(len(stateful)))
    recheck = "".join(
        f"            _r{i} = _M if {params[p]} is _M else _n{i}({params[p]})\n" for i, p in enumerate(stateful)
    )
    if stateful:
        # A policy that fails here goes through _resolve, which drops and counts the call.
        recheck = (
            f"        try:\n{recheck}        except _ANY_ERROR:\n"
            "            _resolve(_value, _key, None)\n            return\n"
        )
        differs = " or ".join(f"{r} != {e}" for r, e in zip(results, expected, strict=True))
        recheck += (
            f"        if {differs}:\n            _resolve(_value, _key, {_tuple_source(results)})\n            return\n"
        )
    source = _UNBOUND_SOURCE.format(
        method=method,
        default=default,
        normalizers="".join(f", _n{i}" for i in range(len(stateful))),
        params="*, " + "".join(f"{p}=_M, " for p in params) if params else "",
        value_check=_VALUE_CHECK.format(low="0" if non_negative else "-_MAX"),
        key=_tuple_source(params),
        entry=", ".join(("_agg", *expected)),
        recheck=recheck,
        write=write,
    )
    return compile_function(source, "_make", f"<tradetel-{method}>", _NAMES)


@functools.lru_cache(maxsize=64)
def _bound_factory(method: str, default: str, non_negative: bool, write: str) -> Callable[..., Any]:
    """Compile (once per shape) the factory of a bound recording method."""
    source = _BOUND_SOURCE.format(
        method=method,
        default=default,
        value_check=_VALUE_CHECK.format(low="0" if non_negative else "-_MAX"),
        write=write,
    )
    return compile_function(source, "_make", f"<tradetel-bound-{method}>", _NAMES)


# --- handles --------------------------------------------------------------------------------------


class _AddCall(Protocol):
    def __call__(self, amount: float = ..., /, **attributes: object) -> None: ...


class _ValueCall(Protocol):
    def __call__(self, value: float, /, **attributes: object) -> None: ...


class Instrument:
    """Base of the recording handles; one per catalog entry and :class:`~tradetel.Telemetry`."""

    __slots__ = (
        "_exemplars",
        "_health",
        "_keys",
        "_max_memo",
        "_memo",
        "_normalizers",
        "_otel",
        "_plan",
        "_store",
        "name",
        "spec",
    )
    _method: ClassVar[str]
    _default: ClassVar[str] = ""
    _non_negative: ClassVar[bool] = False
    _doc: ClassVar[str] = ""

    def __init__(
        self,
        spec: InstrumentSpec,
        name: str,
        otel: Any,
        normalizers: Mapping[str, Normalizer],
        health: Health,
        store: SeriesStore,
    ) -> None:
        self.spec = spec
        self.name = name
        self._otel = otel
        self._normalizers = dict(normalizers)
        self._keys = spec.attribute_keys
        self._health = health
        self._store = store
        self._exemplars: Exemplars | None = None  # set by Exemplars.install when exemplars are on
        self._memo: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._max_memo = 2 * store.cardinality_limit + 64
        # Keys that cannot be keyword parameters (Python keywords) arrive in **_extra and take the plain path.
        params = tuple(k for k in self._keys if k.isidentifier() and not keyword.iskeyword(k))
        stateful = tuple(i for i, k in enumerate(params) if not getattr(self._normalizers[k], "cacheable", False))
        # (key, normaliser, index among the stateful results or -1), in parameter order.
        self._plan = tuple(
            (key, self._normalizers[key], stateful.index(i) if i in stateful else -1) for i, key in enumerate(params)
        )
        make = _unbound_factory(
            self._method, self._default, self._non_negative, params, stateful, store.write_source(" " * 8)
        )
        function = make(
            self._memo,
            self._resolve,
            self._slow,
            self._check,
            _MISSING,
            _MAX_ABS,
            store.instrument,
            *(self._normalizers[params[i]] for i in stateful),
        )
        function.__qualname__ = f"{type(self).__name__}.{self._method}"
        function.__doc__ = self._doc
        object.__setattr__(self, self._method, function)

    # --- the paths behind the generated method ---------------------------------------------------

    def _check(self, value: object) -> float | int | None:
        return check_value(value, self._health, self.name, non_negative=self._non_negative)

    def _resolve(self, value: float | int, raw_values: tuple[Any, ...], stateful: tuple[Any, ...] | None) -> None:
        """Normalise and record; memoise the series when that is safe and cheap to keep.

        ``stateful`` holds the results the generated method already got from the
        stateful policies when they disagreed with the memo, so that they are not
        called twice. Not memoised: values other than short ``str``; calls where
        a policy folded a value (a flood of junk must not fill the memo, and the
        policy counts its folds itself on every call); calls into the overflow
        series; and a recheck that disagreed (it is resolved afresh next time).
        """
        attributes: dict[str, str] = {}
        memoise = stateful is None
        results: list[Any] = []
        for (key, normalize, slot), raw in zip(self._plan, raw_values, strict=True):
            if raw is _MISSING:
                if slot >= 0:
                    results.append(_MISSING)
                continue
            if type(raw) is not str or len(raw) > _MEMO_MAX_TEXT:
                memoise = False
            if stateful is not None and slot >= 0:
                text = stateful[slot]
            else:
                before = normalize.folded
                try:
                    text = normalize(raw)
                except Exception as error:  # a __str__ that raises, an int too long to print, a failing policy
                    self._health.invalid_attribute(self.name, key, raw, error)
                    return
                if normalize.folded != before:
                    memoise = False
            if slot >= 0:
                results.append(text)
            attributes[key] = text
        store = self._store
        aggregation = store.aggregation(attributes, cache=not memoise)
        if store.is_overflow(aggregation):
            self._health.overflow(self.name)
            memoise = False
        memo = self._memo
        if memoise:
            if len(memo) >= self._max_memo:
                memo.clear()  # bounded under a flood of distinct values; hot series come back at once
            memo[raw_values] = (aggregation, *results) if results else aggregation
        elif stateful is not None:
            memo.pop(raw_values, None)
        store.write(aggregation, value)

    def _slow(self, value: float | int, raw_values: tuple[Any, ...], extra: dict[str, object]) -> None:
        """The plain path for calls with keys outside the keyword parameters (unknown or Python keywords)."""
        raw: dict[str, object] = {
            key: raw for (key, _, _), raw in zip(self._plan, raw_values, strict=True) if raw is not _MISSING
        }
        raw.update(extra)
        attributes = self.attributes(raw)
        if attributes is not None:
            self._record(value, attributes)

    def _record(self, value: float | int, attributes: dict[str, str]) -> None:
        store = self._store
        aggregation = store.aggregation(attributes)
        if store.is_overflow(aggregation):
            self._health.overflow(self.name)
        store.write(aggregation, value)

    # --- public ------------------------------------------------------------------------------------

    # Each handle type's own method is an instance slot generated in __init__, which shadows the
    # method of that name here; the other two are these, which drop the call as a BoundSeries does.
    def add(self, amount: float, /, **attributes: object) -> None:
        """Counters and up-down counters: add ``amount`` to the series of these attributes."""
        self._health.drop(self.name, "wrong_method", "add")

    def set(self, value: float, /, **attributes: object) -> None:
        """Gauges: set the series of these attributes to ``value``."""
        self._health.drop(self.name, "wrong_method", "set")

    def record(self, value: float, /, **attributes: object) -> None:
        """Histograms: record ``value`` into the series of these attributes."""
        self._health.drop(self.name, "wrong_method", "record")

    def bind(self, /, **attributes: object) -> BoundSeries:
        """A series handle with these attributes resolved and checked once.

        If a value cannot be rendered as text, every measurement through the handle is dropped
        as ``invalid_attribute`` (strict mode raises here instead).
        """
        resolved = self._attributes(attributes, count=False)  # each measurement through it is counted instead
        if resolved is None:
            return _InvalidSeries(self)
        series = _BOUND_TYPES[self._method](self, resolved)
        if self._exemplars is not None:
            self._exemplars.install_bound(self, series)
        return series

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} keys={list(self._keys)}>"

    @property
    def otel_instrument(self) -> Any:
        """The underlying OpenTelemetry instrument on the Meter."""
        return self._otel

    def attributes(self, raw: Mapping[str, object]) -> dict[str, str] | None:
        """Apply the catalog's key allow-list and value policies to ``raw`` attributes, in catalog order.

        Catalog order makes a series export the same tag order whichever call created it. Unknown
        keys are left out and counted. ``None`` when a value cannot be rendered as text: the
        measurement is to be dropped, and was counted as ``invalid_attribute`` (strict mode raises).
        """
        return self._attributes(raw, count=True)

    def _attributes(self, raw: Mapping[str, object], *, count: bool) -> dict[str, str] | None:
        normalizers = self._normalizers
        out: dict[str, str] = {}
        for key, normalize in normalizers.items():
            if key in raw:
                value = raw[key]
                try:
                    out[key] = normalize(value)
                except Exception as error:  # a __str__ that raises, an int too long to print, a failing policy
                    self._health.invalid_attribute(self.name, key, value, error, count=count)
                    return None
        if len(out) != len(raw):
            for key in raw:
                if key not in normalizers:
                    self._health.unknown_key(self.name, key, self._keys)
        return out


class Counter(Instrument):
    """A monotonic counter. ``add(amount=1, **attributes)``; negative amounts are dropped.

    Example::

        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
    """

    __slots__ = ("add",)
    add: _AddCall
    _method = "add"
    _default = "=1"
    _non_negative = True
    _doc = "Add ``amount`` (default 1, never negative) to the series of these attributes."


class UpDownCounter(Instrument):
    """A counter that goes up and down: ``add(+1)`` / ``add(-1)``.

    Example::

        tel.orders.pending.add(1, exchange="binance", symbol="BTC-USD")
    """

    __slots__ = ("add",)
    add: _ValueCall
    _method = "add"
    _doc = "Add ``amount`` (positive or negative) to the series of these attributes."


class Gauge(Instrument):
    """A sampled value: ``set(value, **attributes)``; the last value wins.

    Example::

        tel.account.equity.set(10_250.0, account="main")
    """

    __slots__ = ("set",)
    set: _ValueCall
    _method = "set"
    _doc = "Set the series of these attributes to ``value``; the last value wins."


class Histogram(Instrument):
    """A distribution with the catalog's bucket boundaries: ``record(value, **attributes)``.

    Negative values are accepted (signed slippage, R-multiples).

    Example::

        tel.trades.r_multiple.record(1.8, symbol="EURUSD", strategy="breakout")
        with tel.orders.latency.time(exchange="binance", stage="ack"):
            place_order()
    """

    __slots__ = ("record",)
    record: _ValueCall
    _method = "record"
    _doc = "Record ``value`` into the distribution of the series of these attributes."

    @contextmanager
    def time(self, /, **attributes: object) -> Iterator[None]:
        """Record the duration of the ``with`` block in seconds (``perf_counter``), even if it raises."""
        start = perf_counter()
        try:
            yield
        finally:
            self.record(perf_counter() - start, **attributes)


class BoundSeries:
    """One series of an instrument with its attributes resolved and checked once.

    Only the method of the instrument's kind records (``add`` for counters and
    up-down counters, ``set`` for gauges, ``record`` for histograms); the
    others drop the call and count it as ``wrong_method``.

    Example::

        btc_fills = tel.orders.filled.bind(exchange="binance", symbol="BTC-USD", side="buy")
        btc_fills.add()
    """

    __slots__ = ("_attributes", "_health", "_instrument", "_name")
    _method: ClassVar[str] = ""

    def __init__(self, instrument: Instrument, attributes: dict[str, str]) -> None:
        self._instrument = instrument
        self._attributes = attributes
        self._health = instrument._health
        self._name = instrument.name
        store = instrument._store
        aggregation = store.aggregation(attributes)
        overflowed = store.is_overflow(aggregation)
        make = _bound_factory(self._method, instrument._default, instrument._non_negative, store.write_source(" " * 8))
        function = make(aggregation, instrument._check, overflowed, self._on_overflow, _MAX_ABS, store.instrument)
        function.__qualname__ = f"BoundSeries.{self._method}"
        function.__doc__ = instrument._doc.replace(" of these attributes", "")
        # An instance slot named like the method shadows the wrong-method fallback below.
        object.__setattr__(self, self._method, function)

    def _on_overflow(self) -> None:
        self._health.overflow(self._name)

    def __repr__(self) -> str:
        return f"<BoundSeries {self._name} {self._attributes}>"

    @property
    def attributes(self) -> Mapping[str, str]:
        return dict(self._attributes)

    def add(self, amount: float = 1, /) -> None:
        """Counters and up-down counters: add ``amount``."""
        self._health.drop(self._name, "wrong_method", "add")

    def set(self, value: float, /) -> None:
        """Gauges: set the value."""
        self._health.drop(self._name, "wrong_method", "set")

    def record(self, value: float, /) -> None:
        """Histograms: record one value."""
        self._health.drop(self._name, "wrong_method", "record")


class _InvalidSeries(BoundSeries):
    """What ``bind()`` returns when an attribute value cannot be rendered: every measurement is dropped.

    The value is still checked first, so a call is counted under the same reason as an unbound call
    with the same value and attributes would be.
    """

    __slots__ = ()

    def __init__(self, instrument: Instrument) -> None:  # no series: nothing is ever recorded
        self._instrument = instrument
        self._attributes = {}
        self._health = instrument._health
        self._name = instrument.name

    def _drop(self, method: str, value: object) -> None:
        if method != self._instrument._method:
            self._health.drop(self._name, "wrong_method", method)
        elif self._instrument._check(value) is not None:
            self._health.drop(self._name, "invalid_attribute", value)

    def add(self, amount: float = 1, /) -> None:
        """Dropped: the bound attributes are unusable."""
        self._drop("add", amount)

    def set(self, value: float, /) -> None:
        """Dropped: the bound attributes are unusable."""
        self._drop("set", value)

    def record(self, value: float, /) -> None:
        """Dropped: the bound attributes are unusable."""
        self._drop("record", value)


class _BoundAdd(BoundSeries):
    __slots__ = ("add",)  # the slot shadows the base method: see BoundSeries.__init__
    _method = "add"


class _BoundSet(BoundSeries):
    __slots__ = ("set",)
    _method = "set"


class _BoundRecord(BoundSeries):
    __slots__ = ("record",)
    _method = "record"


_BOUND_TYPES: dict[str, type[BoundSeries]] = {"add": _BoundAdd, "set": _BoundSet, "record": _BoundRecord}

HANDLE_TYPES: dict[Kind, type[Instrument]] = {
    Kind.COUNTER: Counter,
    Kind.UP_DOWN_COUNTER: UpDownCounter,
    Kind.GAUGE: Gauge,
    Kind.HISTOGRAM: Histogram,
}
