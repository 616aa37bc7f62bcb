"""Hostile input on the hot path: numbers and attribute values whose own methods raise.

A lazy price type whose ``__float__`` raises, an int whose ``__index__`` raises, an object whose
``__class__`` raises, huge ints, numpy scalars and Decimals are thrown (hypothesis) at every
instrument kind, unbound and bound. The default mode must never raise and must count exactly the
drops; strict mode must raise only typed :class:`~tradetel.MeasurementError` subclasses, chained from
the value's own exception when there is one.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tradetel
from tradetel import InvalidAttributeError, InvalidValueError, MeasurementError
from tradetel.testing import Capture, capture

# kind → (catalog name, recording method)
KINDS: dict[str, tuple[str, str]] = {
    "counter": ("orders.filled", "add"),
    "up-down counter": ("orders.pending", "add"),
    "gauge": ("account.equity", "set"),
    "histogram": ("trades.r_multiple", "record"),
}
MAX_ABS = 1e300


# --- hostile numbers: each class says what tradetel must do with it -------------------------------------


class Hostile:
    """A value whose expected outcome is declared: ``reason`` (dropped) or ``None`` (recorded as ``number``)."""

    reason: ClassVar[str | None] = None
    cause: ClassVar[type[BaseException] | None] = None  # what the strict error must be chained from

    def number(self) -> float:
        raise NotImplementedError


class LazyPrice(float, Hostile):
    """A float subclass whose conversion raises (a price computed on demand, whose feed is down)."""

    reason = "conversion_error"
    cause = RuntimeError

    def __float__(self) -> float:
        raise RuntimeError("price feed disconnected")


class LazyReal(Hostile):
    """A registered ``numbers.Real`` whose ``__float__`` raises."""

    reason = "conversion_error"
    cause = RuntimeError

    def __float__(self) -> float:
        raise RuntimeError("not computed yet")


numbers.Real.register(LazyReal)


class BadIndexInt(int, Hostile):
    """An int subclass whose ``__index__`` and ``__int__`` raise; its float conversion works."""

    def __index__(self) -> int:
        raise RuntimeError("no index")

    def __int__(self) -> int:
        raise RuntimeError("no int")

    def number(self) -> float:
        return int.__float__(self)


class BadFloatInt(int, Hostile):
    """An int subclass whose ``__float__`` raises ``LookupError``."""

    reason = "conversion_error"
    cause = LookupError

    def __float__(self) -> float:
        raise LookupError("no float")


class BadEqFloat(float, Hostile):
    """A float subclass whose ``__eq__``, ``__ne__`` and ``__hash__`` raise; the number itself is fine."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no equality")

    def __ne__(self, other: object) -> bool:
        raise RuntimeError("no inequality")

    def __hash__(self) -> int:
        raise RuntimeError("no hash")

    def number(self) -> float:
        return float.__float__(self)


class BadClass(Hostile):
    """An object whose ``__class__`` raises, so that even ``isinstance`` fails on it."""

    reason = "conversion_error"
    cause = RuntimeError

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no class")


def plain_reason(value: object, kind: str) -> str | None:
    """Why a plain (non-hostile) value is dropped, from the documented rules; ``None`` when recorded."""
    if isinstance(value, bool | numpy.bool_) or not isinstance(value, int | float | Decimal | numpy.number):
        return "wrong_type"
    if isinstance(value, Decimal) and value.is_nan():
        return "nan"
    number: float | int
    if type(value) is int:
        number = value
    else:
        number = float(value)
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "too_large" if isinstance(value, Decimal) and value.is_finite() else "infinite"
    if not -MAX_ABS <= number <= MAX_ABS:
        return "too_large"
    if kind == "counter" and number < 0:
        return "negative"
    return None


def expected_reason(value: object, kind: str) -> str | None:
    if type(value) in HOSTILE_TYPES:
        reason = type(value).reason  # type: ignore[attr-defined]
        if reason is None:
            number = value.number()  # type: ignore[attr-defined]
            if kind == "counter" and number < 0:
                return "negative"
        return reason  # type: ignore[no-any-return]
    return plain_reason(value, kind)


def recorded_number(value: object) -> float | int:
    if type(value) in HOSTILE_TYPES:
        return value.number()  # type: ignore[attr-defined, no-any-return]
    return value if type(value) is int else float(value)  # type: ignore[arg-type]


HOSTILE_TYPES = (LazyPrice, LazyReal, BadIndexInt, BadFloatInt, BadEqFloat, BadClass)

small = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
hostile_values = st.one_of(
    small.map(LazyPrice),
    st.builds(LazyReal),
    st.integers(-(10**6), 10**6).map(BadIndexInt),
    st.integers(-(10**6), 10**6).map(BadFloatInt),
    small.map(BadEqFloat),
    st.builds(BadClass),
)
plain_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(min_value=10**299, max_value=10**5000).map(lambda v: v if v % 2 else -v),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("1e400"), Decimal("-1e400"), Decimal("sNaN")]),
    st.floats(allow_nan=True, allow_infinity=True).map(numpy.float64),
    st.floats(width=32, allow_nan=True, allow_infinity=True).map(numpy.float32),
    st.integers(-(2**63), 2**63 - 1).map(numpy.int64),
    st.booleans().map(numpy.bool_),
)
values = st.one_of(hostile_values, plain_values)


# --- hostile attribute values -------------------------------------------------------------------------------


class Unprintable:
    """``__str__`` and ``__repr__`` raise: the attribute cannot be rendered, so the measurement is dropped."""

    def __str__(self) -> str:
        raise RuntimeError("no text")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __format__(self, spec: str) -> str:
        raise RuntimeError("no format")


class Unhashable:
    """``__hash__`` and ``__eq__`` raise; its text is fine, so the measurement is recorded."""

    def __hash__(self) -> int:
        raise RuntimeError("no hash")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no equality")

    def __str__(self) -> str:
        return "hashless"


attribute_values = st.one_of(
    st.sampled_from(["binance", "BTC-USD", "buy"]),
    st.integers(),
    st.builds(Unprintable),
    st.builds(Unhashable),
    st.integers(min_value=10**5000, max_value=10**5001),  # too long to print
    st.floats(allow_nan=True).map(numpy.float64),
)
attributes = st.dictionaries(st.sampled_from(["exchange", "symbol", "side", "account"]), attribute_values, max_size=3)


def unusable(value: object) -> bool:
    return isinstance(value, Unprintable) or (type(value) is int and abs(value) >= 10**4300)


operations = st.lists(
    st.tuples(st.sampled_from(tuple(KINDS)), st.booleans(), attributes, st.lists(values, min_size=1, max_size=4)),
    min_size=1,
    max_size=6,
)
Operation = tuple[str, bool, dict[str, Any], list[Any]]


def _run(
    tel: tradetel.Telemetry, ops: list[Operation]
) -> tuple[list[tuple[str, str]], list[str], list[MeasurementError]]:
    """Run ``ops``; return the drops expected in default mode, the errors expected in strict mode and those raised.

    Drops are (kind, reason); strict errors are reasons, in order: a bound handle with an unusable attribute
    raises once at ``bind()`` and is then never called.
    """
    drops: list[tuple[str, str]] = []
    strict: list[str] = []
    raised: list[MeasurementError] = []
    for kind, bound, attrs, vals in ops:
        name, method = KINDS[kind]
        handle = tel.instrument(name)
        keys = set(handle.spec.attribute_keys)
        known = {k: v for k, v in attrs.items() if k in keys}
        bad_attribute = any(unusable(v) for v in known.values())
        record = None
        if bound:
            if bad_attribute:
                strict.append("invalid_attribute")
            try:
                record = getattr(handle.bind(**known), method)
            except MeasurementError as error:
                raised.append(error)
                continue
        for value in vals:
            reason = expected_reason(value, kind) or ("invalid_attribute" if bad_attribute else None)
            if reason is not None:
                drops.append((kind, reason))
                strict.append(reason)
            try:
                if record is not None:
                    record(value)
                else:
                    getattr(handle, method)(value, **known)
            except MeasurementError as error:
                raised.append(error)
    return drops, strict, raised


@pytest.fixture
def quiet() -> Iterator[None]:
    logger = logging.getLogger("tradetel")
    logger.disabled = True  # hypothesis runs outside caplog; the counts are checked instead
    try:
        yield
    finally:
        logger.disabled = False


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(operations)
def test_hostile_values_never_escape_and_every_drop_is_counted(quiet: None, ops: list[Operation]) -> None:
    """Default mode raises nothing, counts exactly the expected drops per reason and records the rest."""
    with capture() as cap:
        expected, _, raised = _run(cap.telemetry, ops)
        assert raised == []
        wanted = Counter(expected)
        for kind, (name, _) in KINDS.items():
            reasons = {r for k, r in wanted if k == kind} | {"conversion_error", "wrong_type", "invalid_attribute"}
            for reason in reasons:
                assert cap.dropped(reason, name) == wanted[(kind, reason)], (kind, reason)
        assert cap.dropped() == len(expected)
        _check_recorded(cap, ops)


def _check_recorded(cap: Capture, ops: list[Operation]) -> None:
    """The histogram holds exactly the accepted values; the counters add up to them."""
    accepted: dict[str, list[float | int]] = {kind: [] for kind in KINDS}
    for kind, _, attrs, vals in ops:
        keys = set(cap.telemetry.instrument(KINDS[kind][0]).spec.attribute_keys)
        if any(unusable(v) for k, v in attrs.items() if k in keys):
            continue
        accepted[kind] += [recorded_number(v) for v in vals if expected_reason(v, kind) is None]
    histogram = cap.series(KINDS["histogram"][0])
    assert sum(point.count for _, point in histogram) == len(accepted["histogram"])
    for kind in ("counter", "up-down counter"):
        total = math.fsum(float(value) for _, value in cap.series(KINDS[kind][0]))
        want = math.fsum(float(v) for v in accepted[kind])
        assert abs(total - want) <= (len(accepted[kind]) + 1) * 1e-15 * math.fsum(abs(float(v)) for v in accepted[kind])


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(operations)
def test_hostile_values_raise_only_typed_errors_in_strict_mode(quiet: None, ops: list[Operation]) -> None:
    """Strict mode raises one MeasurementError per expected drop, each typed, and chained from a value's own error."""
    with capture(strict=True) as cap:
        _, expected, raised = _run(cap.telemetry, ops)
    assert [error.reason for error in raised] == expected
    for error in raised:
        typed = InvalidAttributeError if error.reason == "invalid_attribute" else InvalidValueError
        assert isinstance(error, typed), error
        if error.reason == "conversion_error":
            assert isinstance(error.__cause__, RuntimeError | LookupError)


@pytest.mark.parametrize(
    ("value", "cause"),
    [
        (LazyPrice(101.5), RuntimeError),
        (LazyReal(), RuntimeError),
        (BadFloatInt(3), LookupError),
        (BadClass(), RuntimeError),
    ],
    ids=["float-subclass", "registered-real", "int-subclass", "raising-__class__"],
)
@pytest.mark.parametrize("kind", tuple(KINDS))
@pytest.mark.parametrize("bound", [False, True], ids=["unbound", "bound"])
def test_a_number_whose_conversion_raises(value: object, cause: type[BaseException], kind: str, bound: bool) -> None:
    """A raising ``__float__`` is dropped as conversion_error (default) or raised as InvalidValueError from it."""
    name, method = KINDS[kind]
    with capture() as cap:
        handle = cap.telemetry.instrument(name)
        getattr(handle.bind() if bound else handle, method)(value)
        assert cap.dropped("conversion_error", name) == 1
        assert [_count(point) for _, point in cap.series(name)] in ([], [0])
    with capture(strict=True) as cap:
        handle = cap.telemetry.instrument(name)
        with pytest.raises(InvalidValueError) as raised:
            getattr(handle.bind() if bound else handle, method)(value)
        assert raised.value.reason == "conversion_error"
        assert isinstance(raised.value.__cause__, cause)


def _count(point: Any) -> float:
    """A histogram point's count, a counter's value (a gauge is never bound without being set)."""
    return float(getattr(point, "count", point))


def test_an_unprintable_attribute_is_raised_chained_in_strict_mode(strict_cap: Capture) -> None:
    """Strict mode's InvalidAttributeError for an attribute whose ``__str__`` raises is chained from that error."""
    with pytest.raises(InvalidAttributeError) as raised:
        strict_cap.telemetry.orders.filled.add(1, symbol=Unprintable())
    assert isinstance(raised.value.__cause__, RuntimeError)
