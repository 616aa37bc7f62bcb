"""The bad-input matrix: what every public call does with bad values, attributes, decorator usage and settings.

``MATRIX`` below is the matrix shown in ``docs/reliability.md`` ("## Bad input"): the examples are
evaluated as written, every row is checked in the default and in strict mode, and
``test_the_reliability_page_shows_this_matrix`` keeps the page equal to ``matrix_markdown()``.
Print the Markdown with ``python tests/test_bad_input.py``.

The property test at the end throws arbitrary values and attributes at every instrument kind.
"""

from __future__ import annotations

import enum
import logging
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tradetel
from tradetel import (
    ConfigurationError,
    InvalidAttributeError,
    InvalidValueError,
    MeasurementError,
)
from tradetel.decorators import counted, exchange_call, order_placement, timed, trade_close
from tradetel.testing import Capture, capture

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
START, END = "<!-- bad-input-matrix:start -->", "<!-- bad-input-matrix:end -->"

# kind → (catalog name, recording method)
KINDS: dict[str, tuple[str, str]] = {
    "counter": ("orders.filled", "add"),
    "up-down counter": ("orders.pending", "add"),
    "gauge": ("account.equity", "set"),
    "histogram": ("trades.r_multiple", "record"),
}
EVERY_KIND = tuple(KINDS)
SIGNED_KINDS = ("up-down counter", "gauge", "histogram")


# --- the objects the examples use -------------------------------------------------------------------


class Unprintable:
    """An attribute value whose ``__str__`` raises (its repr works, so failures can be reported)."""

    def __str__(self) -> str:
        raise RuntimeError("no text for this object")

    def __repr__(self) -> str:
        return "Unprintable()"


class LazyPrice(float):
    """A number computed on demand whose conversion raises (its price feed is down)."""

    def __float__(self) -> float:
        raise RuntimeError("price feed disconnected")

    def __repr__(self) -> str:
        return "LazyPrice()"


class Unhashable:
    """An attribute value whose ``__hash__`` raises something other than TypeError."""

    def __hash__(self) -> int:
        raise ValueError("no hash for this object")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __str__(self) -> str:
        return "unhashable"


class Venue(enum.Enum):
    BINANCE = "binance"


class Level(enum.IntEnum):
    HIGH = 2


def bot(symbol: str) -> str:
    """The decorated function of the decorator rows."""
    return symbol


class RequestTimeout(Exception):  # noqa: N818 - named like ccxt's exception
    """An exception whose message cannot be rendered (``__str__`` raises)."""

    def __str__(self) -> str:
        raise RuntimeError("no message")


def failing_bot(symbol: str) -> str:
    """A decorated function that raises an exception whose message cannot be rendered."""
    raise RequestTimeout


# --- outcomes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """The measurement is recorded (as ``label`` for attribute rows); the same in strict mode."""

    label: str | None = None
    note: str = ""
    shown: str | None = None  # how the page shows a label too long to print

    def default(self) -> str:
        label = f"`{_code(self.label)}`" if self.shown is None and self.label is not None else self.shown
        text = "recorded" if label is None else f"recorded with the label {label}"
        return f"{text} {self.note}" if self.note else text

    def strict(self) -> str:
        return "the same"


@dataclass(frozen=True)
class Dropped:
    """The measurement is dropped and counted under ``reason``; strict mode raises ``error``."""

    reason: str
    error: type[MeasurementError]

    def default(self) -> str:
        return f"dropped, counted as `reason={self.reason}`"

    def strict(self) -> str:
        return f"`{self.error.__name__}`"


@dataclass(frozen=True)
class KeyDropped:
    """An unknown attribute key: the attribute is dropped and counted, the measurement kept."""

    def default(self) -> str:
        return "the attribute is dropped, the measurement kept; counted in `tradetel.attributes.dropped{key}`"

    def strict(self) -> str:
        return "`InvalidAttributeError`"


@dataclass(frozen=True)
class Raises:
    """Both modes raise ``error`` at ``when``, with a message containing ``names``."""

    error: type[Exception]
    when: str
    names: str

    def default(self) -> str:
        return f"`{self.error.__name__}` at {self.when}, naming `{_code(self.names)}`"

    def strict(self) -> str:
        return "the same"


@dataclass(frozen=True)
class RunsUnrecorded:
    """A decorator resolved at call time: the call runs unrecorded (logged once); strict raises at the call."""

    names: str

    def default(self) -> str:
        return "the function runs as if undecorated; nothing is recorded; logged once"

    def strict(self) -> str:
        return f"`ConfigurationError` at the call, naming `{_code(self.names)}`"


@dataclass(frozen=True)
class ExtractorDropped:
    """A failing ``from_args`` reader: recorded without that attribute, counted; strict raises at the call."""

    def default(self) -> str:
        return "recorded without that attribute; counted as `reason=extractor_error`"

    def strict(self) -> str:
        return "`InvalidValueError` at the call"


@dataclass(frozen=True)
class CountedByType:
    """The call's exception cannot be rendered: still counted, categorised from its class name; re-raised."""

    instrument: str
    key: str
    label: str

    def default(self) -> str:
        return (
            f"counted in `{self.instrument}` with `{self.key}={self.label}` from the class name; "
            "the exception is re-raised unchanged"
        )

    def strict(self) -> str:
        return "the same"


@dataclass(frozen=True)
class ResultDropped:
    """A result the default reader cannot read: nothing partial is recorded; dropped and counted; strict raises."""

    reason: str

    def default(self) -> str:
        return f"nothing read from the result is recorded; counted as `reason={self.reason}`, logged once"

    def strict(self) -> str:
        return "`InvalidValueError` after the call returned"


Outcome = Recorded | Dropped | KeyDropped | Raises | RunsUnrecorded | ExtractorDropped | CountedByType | ResultDropped


@dataclass(frozen=True)
class Row:
    """One line of the matrix: an input, examples (Python source, evaluated as written) and the outcome."""

    group: str
    input: str
    examples: tuple[str, ...]
    outcome: Outcome
    kinds: tuple[str, ...] = EVERY_KIND
    key: str = "symbol"
    notes: str = field(default="", compare=False)


def _code(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


VALUES = "Values: `add`, `set`, `record`, on handles and bound handles"
ATTRIBUTES = "Attribute values (`symbol=...` of `orders.filled`, a free-text key)"
CALLS = "Calls"
DECORATORS = "Decorators"
SETTINGS = "Settings (`configure()`)"

NAN = Dropped("nan", InvalidValueError)
INFINITE = Dropped("infinite", InvalidValueError)
WRONG_TYPE = Dropped("wrong_type", InvalidValueError)
TOO_LARGE = Dropped("too_large", InvalidValueError)
AS_FLOAT = Recorded(note="as a float")

MATRIX: tuple[Row, ...] = (
    # values
    Row(VALUES, "NaN", ('float("nan")', 'numpy.float64("nan")', 'Decimal("NaN")', 'Decimal("sNaN")'), NAN),
    Row(VALUES, "±infinity", ("math.inf", "-math.inf", 'numpy.float32("inf")', 'Decimal("-Infinity")'), INFINITE),
    Row(
        VALUES,
        "negative increment of a counter",
        ("-1", "-0.5", "numpy.int64(-3)"),
        Dropped("negative", InvalidValueError),
        kinds=("counter",),
    ),
    Row(VALUES, "negative value of the signed kinds", ("-1", "-0.5"), Recorded(), kinds=SIGNED_KINDS),
    Row(
        VALUES,
        "huge numbers (beyond ±1e300)",
        ("10**400", "1e301", "-1e301", 'Decimal("1e400")', "Fraction(10**400)", "10**5000"),
        TOO_LARGE,
    ),
    Row(VALUES, "the largest accepted magnitude", ("1e300", "10**300"), Recorded()),
    Row(VALUES, "text", ('"1"', '""'), WRONG_TYPE),
    Row(VALUES, "None", ("None",), WRONG_TYPE),
    Row(VALUES, "bytes", ('b"1"',), WRONG_TYPE),
    Row(VALUES, "booleans", ("True", "numpy.bool_(True)"), WRONG_TYPE),
    Row(VALUES, "other non-numbers", ("1j", "[1]", '{"v": 1}'), WRONG_TYPE),
    Row(VALUES, "Decimal and Fraction", ('Decimal("1.5")', "Fraction(3, 2)"), AS_FLOAT),
    Row(VALUES, "numpy scalars", ("numpy.float64(1.5)", "numpy.float32(1.5)", "numpy.int64(2)"), AS_FLOAT),
    Row(VALUES, "int and float subclasses", ("Level.HIGH",), AS_FLOAT),
    Row(
        VALUES,
        "a number whose conversion raises (a lazy price type)",
        ("LazyPrice(1.5)",),
        Dropped("conversion_error", InvalidValueError),
    ),
    # attribute values
    Row(ATTRIBUTES, "int", ("5",), Recorded("5")),
    Row(ATTRIBUTES, "float", ("1.5",), Recorded("1.5")),
    Row(ATTRIBUTES, "bool", ("True",), Recorded("true")),
    Row(ATTRIBUTES, "None", ("None",), Recorded("none")),
    Row(ATTRIBUTES, "bytes (decoded as UTF-8)", ('b"BTC-USD"',), Recorded("BTC-USD")),
    Row(ATTRIBUTES, "invalid UTF-8 bytes", ('b"\\xff"',), Recorded("\ufffd")),
    Row(ATTRIBUTES, "enum member", ("Venue.BINANCE",), Recorded("binance")),
    Row(ATTRIBUTES, "list", ("[1, 2]",), Recorded("[1, 2]")),
    Row(ATTRIBUTES, "dict", ('{"a": 1}',), Recorded("{'a': 1}")),
    Row(ATTRIBUTES, "object whose `__hash__` raises", ("Unhashable()",), Recorded("unhashable")),
    Row(
        ATTRIBUTES,
        "object whose `__str__` raises",
        ("Unprintable()",),
        Dropped("invalid_attribute", InvalidAttributeError),
    ),
    Row(
        ATTRIBUTES,
        "int too long to print (over 4300 digits)",
        ("10**5000",),
        Dropped("invalid_attribute", InvalidAttributeError),
    ),
    Row(
        ATTRIBUTES,
        "very long text",
        ('"x" * 1000',),
        Recorded("x" * 64, shown="of its first 64 characters"),
    ),
    Row(ATTRIBUTES, "control characters", ('"BTC\\nUSD\\x00"',), Recorded("BTC_USD_")),
    Row(ATTRIBUTES, "lone surrogate", ('"\\ud800"',), Recorded("?")),
    Row(
        ATTRIBUTES,
        "value outside an enumeration (`side`)",
        ('"short-ish"',),
        Recorded("other"),
        key="side",
    ),
    Row(ATTRIBUTES, "unknown attribute key", ('venue="x"',), KeyDropped(), key=""),
    # calls
    Row(
        CALLS,
        "the wrong method of a handle",
        ("tel.account.equity.add(1)",),
        Dropped("wrong_method", InvalidValueError),
    ),
    Row(
        CALLS,
        "the wrong method of a bound handle",
        ('tel.orders.filled.bind(side="buy").set(1)',),
        Dropped("wrong_method", InvalidValueError),
    ),
    Row(
        CALLS,
        "a gauge's value passed by keyword",
        ("tel.account.equity.set(value=1.0)",),
        Raises(TypeError, "the call (Python checks the signature)", "value"),
    ),
    Row(
        CALLS,
        "a counter's amount passed by keyword (1 is recorded)",
        ("tel.orders.filled.add(amount=5)",),
        KeyDropped(),
    ),
    # decorators
    Row(
        DECORATORS,
        "decorating a non-callable",
        ('timed("orders.latency", telemetry=tel)(42)',),
        Raises(ConfigurationError, "decoration", "timed(...)"),
    ),
    Row(
        DECORATORS,
        "unknown instrument name",
        ('timed("orders.nope", telemetry=tel)',),
        Raises(ConfigurationError, "decoration", "timed(instrument='orders.nope')"),
    ),
    Row(
        DECORATORS,
        "instrument of the wrong kind",
        ('timed("orders.filled", telemetry=tel)',),
        Raises(ConfigurationError, "decoration", "expected a histogram"),
    ),
    Row(
        DECORATORS,
        "instrument that is neither a name nor a handle",
        ("timed(42, telemetry=tel)",),
        Raises(ConfigurationError, "decoration", "timed(instrument)"),
    ),
    Row(
        DECORATORS,
        "unknown attribute key",
        ('counted("orders.filled", telemetry=tel, venue="x")',),
        Raises(ConfigurationError, "decoration", "counted(venue=...)"),
    ),
    Row(
        DECORATORS,
        "`from_args` naming no parameter",
        ('timed("orders.latency", telemetry=tel, from_args={"symbol": "sym"})(bot)',),
        Raises(ConfigurationError, "decoration", "timed(from_args['symbol'])"),
    ),
    Row(
        DECORATORS,
        "`from_args` of the wrong type",
        ('timed("orders.latency", telemetry=tel, from_args={"symbol": 5})(bot)',),
        Raises(ConfigurationError, "decoration", "timed(from_args['symbol'])"),
    ),
    Row(
        DECORATORS,
        "`telemetry=` that is not a Telemetry",
        ('timed("orders.latency", telemetry="tel")',),
        Raises(ConfigurationError, "decoration", "timed(telemetry=...)"),
    ),
    Row(
        DECORATORS,
        "unknown name, found at the first call (default telemetry)",
        ('timed("orders.nope")(bot)("BTC-USD")',),
        RunsUnrecorded("timed(instrument='orders.nope')"),
    ),
    Row(
        DECORATORS,
        "`from_args` reader that raises",
        ('timed("orders.latency", telemetry=tel, from_args={"symbol": lambda args: 1 / 0})(bot)("BTC-USD")',),
        ExtractorDropped(),
    ),
    Row(
        DECORATORS,
        "an exception whose `__str__` raises",
        ('exchange_call(telemetry=tel, exchange="binance")(failing_bot)("BTC-USD")',),
        CountedByType("exchange.errors", "error_type", "timeout"),
    ),
    Row(
        DECORATORS,
        "a returned trade the default reader cannot read (text, wrong types, nothing to classify)",
        ('trade_close(telemetry=tel)(bot)("BTC-USD")',),
        ResultDropped("unreadable_trade"),
    ),
    Row(
        DECORATORS,
        "a returned order the default reader cannot read (text, wrong types, no status or fill)",
        ('order_placement(telemetry=tel, exchange="binance")(bot)("BTC-USD")',),
        ResultDropped("unreadable_order"),
    ),
    # settings
    Row(
        SETTINGS,
        "a number that is not one",
        ('configure(env={"OTEL_EXPORTER_PROMETHEUS_PORT": "http"})',),
        Raises(ConfigurationError, "start-up", "OTEL_EXPORTER_PROMETHEUS_PORT"),
    ),
    Row(
        SETTINGS,
        "a boolean that is not one",
        ('configure(env={"TRADETEL_STRICT": "maybe"})',),
        Raises(ConfigurationError, "start-up", "TRADETEL_STRICT"),
    ),
    Row(
        SETTINGS,
        "an unknown argument",
        ("configure(prometheus_prot=9464)",),
        Raises(ConfigurationError, "start-up", "prometheus_prot"),
    ),
    Row(
        SETTINGS,
        "an unknown exporter",
        ('configure(exporters="prometheus,statsd")',),
        Raises(ConfigurationError, "start-up", "exporters"),
    ),
    Row(
        SETTINGS,
        "an override of an unknown attribute key",
        ('configure(instruments={"orders.filled": {"attributes": {"venue": "free"}}})',),
        Raises(ConfigurationError, "start-up", "instruments.orders.filled.attributes"),
    ),
    Row(
        SETTINGS,
        "a TLS certificate without its key",
        ('configure(prometheus_tls_cert="cert.pem")',),
        Raises(ConfigurationError, "start-up", "prometheus_tls_key"),
    ),
    Row(
        SETTINGS,
        "a basic-auth user without a password",
        ('configure(env={"TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME": "scraper"})',),
        Raises(ConfigurationError, "start-up", "TRADETEL_PROMETHEUS_BASIC_AUTH_PASSWORD"),
    ),
)


def matrix_markdown() -> str:
    """The matrix as Markdown tables, one per group (the text between the markers on the page)."""
    out: list[str] = []
    groups = list(dict.fromkeys(row.group for row in MATRIX))
    for group in groups:
        kinds = group == VALUES
        out.append(f"\n### {group}\n\n")
        out.append("| Input | Examples |" + (" Kinds |" if kinds else "") + " Default mode | Strict mode |\n")
        out.append("| --- | --- |" + (" --- |" if kinds else "") + " --- | --- |\n")
        for row in MATRIX:
            if row.group != group:
                continue
            examples = ", ".join(f"`{_code(example)}`" for example in row.examples)
            applies = f" {'every kind' if row.kinds == EVERY_KIND else ', '.join(row.kinds)} |" if kinds else ""
            out.append(f"| {row.input} | {examples} |{applies} {row.outcome.default()} | {row.outcome.strict()} |\n")
    return "".join(out) + "\n"


# --- running the rows -------------------------------------------------------------------------------------


def _namespace(tel: tradetel.Telemetry) -> dict[str, Any]:
    def configure(**kwargs: Any) -> tradetel.Telemetry:
        kwargs.setdefault("exporters", "none")
        kwargs.setdefault("env", {})
        made = tradetel.configure(**kwargs)
        made.shutdown()  # only reached when the row's expected error did not happen
        return made

    return {
        "math": math,
        "numpy": numpy,
        "Decimal": Decimal,
        "Fraction": Fraction,
        "Level": Level,
        "Venue": Venue,
        "Unprintable": Unprintable,
        "Unhashable": Unhashable,
        "LazyPrice": LazyPrice,
        "bot": bot,
        "failing_bot": failing_bot,
        "exchange_call": exchange_call,
        "trade_close": trade_close,
        "order_placement": order_placement,
        "tel": tel,
        "timed": timed,
        "counted": counted,
        "configure": configure,
    }


def _evaluate(expression: str, tel: tradetel.Telemetry) -> Any:
    return eval(expression, _namespace(tel))  # the matrix's own examples, written in this file


def _cases() -> Iterator[Any]:
    for row in MATRIX:
        for example in row.examples:
            kinds = row.kinds if row.group == VALUES else ("-",)
            for kind in kinds:
                label = f"{row.group.split()[0].lower()}-{row.input}-{example}-{kind}".replace(" ", "_")
                yield pytest.param(row, example, kind, id=label[:90])


@pytest.fixture(params=[False, True], ids=["default", "strict"])
def mode_cap(request: pytest.FixtureRequest) -> Iterator[Capture]:
    with capture(strict=request.param) as captured:
        yield captured


def _series_total(cap: Capture, kind: str) -> tuple[float, int]:
    """The instrument's total (sum, or last value for the gauge) and, for the histogram, its count."""
    name = KINDS[kind][0]
    if kind == "histogram":
        histogram = cap.histogram(name)
        return float(histogram.sum), histogram.count
    return cap.value(name), 0


def _check_value_row(cap: Capture, row: Row, example: str, kind: str) -> None:
    tel = cap.telemetry
    name, method = KINDS[kind]
    handle = tel.instrument(name)
    value = _evaluate(example, tel)
    calls = (getattr(handle, method), getattr(handle.bind(), method))
    outcome = row.outcome
    for call in calls:
        if isinstance(outcome, Dropped) and tel.strict:
            with pytest.raises(outcome.error) as raised:
                call(value)
            assert raised.value.reason == outcome.reason
            assert handle.name in str(raised.value) and outcome.reason in str(raised.value)
        else:
            call(value)
    if isinstance(outcome, Dropped):
        assert cap.dropped(outcome.reason, name) == (0 if tel.strict else 2)
        assert _series_total(cap, kind) == (0, 0)
        return
    assert isinstance(outcome, Recorded)
    assert cap.dropped() == 0
    expected = float(value) if kind == "gauge" else 2 * float(value)
    assert _series_total(cap, kind) == (expected, 2 if kind == "histogram" else 0)


def _check_attribute_row(cap: Capture, row: Row, example: str) -> None:
    tel = cap.telemetry
    handle = tel.orders.filled
    outcome = row.outcome
    if isinstance(outcome, KeyDropped):
        attributes = _evaluate(f"dict({example})", tel)
    else:
        attributes = {row.key: _evaluate(example, tel)}
    if tel.strict and not isinstance(outcome, Recorded):
        error = outcome.error if isinstance(outcome, Dropped) else InvalidAttributeError
        with pytest.raises(error):
            handle.add(1, **attributes)
        with pytest.raises(error):
            handle.bind(**attributes)
        assert cap.series("orders.filled") == []
        return
    handle.add(1, **attributes)
    handle.bind(**attributes).add(1)
    if isinstance(outcome, Dropped):
        assert cap.dropped(outcome.reason, "orders.filled") == 2
        assert cap.series("orders.filled") == []
    elif isinstance(outcome, KeyDropped):
        assert cap.series("orders.filled") == [({}, 2)]
        for key in attributes:
            assert cap.value("tradetel.attributes.dropped", key=key) == 2
    else:
        assert isinstance(outcome, Recorded)
        assert cap.series("orders.filled") == [({row.key: outcome.label}, 2)]
        assert cap.dropped() == 0


def _check_call_row(cap: Capture, row: Row, example: str, caplog: pytest.LogCaptureFixture) -> None:
    tel = cap.telemetry
    outcome = row.outcome
    namespace = _namespace(tel)
    run: Callable[[], Any] = lambda: exec(example, namespace)  # noqa: E731 - the row's own example
    if isinstance(outcome, Raises):
        with pytest.raises(outcome.error) as raised:
            run()
        assert outcome.names in str(raised.value)
        return
    if isinstance(outcome, Dropped):
        if tel.strict:
            with pytest.raises(outcome.error) as error:
                run()
            assert error.value.reason == outcome.reason
        else:
            run()
            assert cap.dropped(outcome.reason) == 1
        return
    if isinstance(outcome, KeyDropped):  # the keyword lands in **attributes
        if tel.strict:
            with pytest.raises(InvalidAttributeError):
                run()
        else:
            run()
            assert cap.value("tradetel.attributes.dropped") == 1
        return
    if isinstance(outcome, CountedByType):
        with pytest.raises(RequestTimeout):
            run()
        assert cap.value(outcome.instrument, **{outcome.key: outcome.label}) == 1
        assert cap.dropped() == 0
        return
    if isinstance(outcome, ResultDropped):
        if tel.strict:
            with pytest.raises(InvalidValueError) as raised:
                run()
            assert raised.value.reason == outcome.reason
        else:
            run()
            assert cap.dropped(outcome.reason) == 1
        assert cap.value("trades.closed") == 0
        assert cap.value("orders.filled") + cap.value("orders.rejected") == 0
        return
    tradetel.set_default(tel)
    try:
        if isinstance(outcome, RunsUnrecorded):
            if tel.strict:
                with pytest.raises(ConfigurationError) as raised:
                    run()
                assert outcome.names in str(raised.value)
            else:
                with caplog.at_level(logging.WARNING, logger="tradetel"):
                    assert eval(example, namespace) == "BTC-USD"
                assert len([r for r in caplog.records if "records nothing" in r.getMessage()]) == 1
                assert cap.histogram("orders.latency").count == 0
            return
        assert isinstance(outcome, ExtractorDropped)
        if tel.strict:
            with pytest.raises(InvalidValueError):
                run()
        else:
            run()
            assert cap.dropped("extractor_error") == 1
            assert [attributes for attributes, _ in cap.series("orders.latency")] == [{}]
    finally:
        tradetel.set_default(None)


@pytest.mark.parametrize(("row", "example", "kind"), list(_cases()))
def test_matrix_row(
    mode_cap: Capture, row: Row, example: str, kind: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Each example of each matrix row does, in default and in strict mode, what the row (and the page) says."""
    caplog.set_level(logging.CRITICAL, logger="tradetel")  # the drops log warnings; rows check the counts
    if row.group == VALUES:
        _check_value_row(mode_cap, row, example, kind)
    elif row.group == ATTRIBUTES:
        _check_attribute_row(mode_cap, row, example)
    else:
        caplog.set_level(logging.WARNING, logger="tradetel")
        _check_call_row(mode_cap, row, example, caplog)


def test_the_reliability_page_shows_this_matrix() -> None:
    """docs/reliability.md shows exactly the matrix these tests run (regenerate: python tests/test_bad_input.py)."""
    text = PAGE.read_text()
    match = re.search(re.escape(START) + r"\n(.*?)" + re.escape(END), text, re.S)
    assert match is not None, f"{PAGE.name} has no {START} ... {END} section"
    assert match.group(1) == matrix_markdown()


def test_a_bad_call_in_a_loop_is_logged_once(cap: Capture, caplog: pytest.LogCaptureFixture) -> None:
    """A thousand NaNs into one instrument log one line, and every one of them is counted."""
    caplog.set_level(logging.WARNING, logger="tradetel")
    for _ in range(1000):
        cap.telemetry.orders.filled.add(math.nan)
    lines = [r for r in caplog.records if "orders.filled" in r.getMessage()]
    assert len(lines) == 1
    assert "nan" in lines[0].getMessage()
    assert cap.dropped("nan") == 1000


def test_a_flood_of_distinct_problems_stops_logging(cap: Capture, caplog: pytest.LogCaptureFixture) -> None:
    """Distinct unknown keys are logged up to a bound, then one line says the rest are only counted."""
    from tradetel._health import MAX_LOGGED

    caplog.set_level(logging.WARNING, logger="tradetel")
    for index in range(MAX_LOGGED + 200):
        cap.telemetry.orders.filled.add(1, **{f"key{index}": "x"})
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == MAX_LOGGED + 1
    assert "only counted" in messages[-1]
    assert cap.value("orders.filled") == MAX_LOGGED + 200


# --- property test ----------------------------------------------------------------------------------------

VALUE_REASONS = ("nan", "infinite", "too_large", "negative", "wrong_type")
MAX_ABS = 1e300

values_strategy = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(min_value=10**299, max_value=10**320).map(lambda v: v if v % 2 else -v),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.none(),
    st.booleans(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.fractions(),
    st.lists(st.integers(), max_size=2),
)
ATTRIBUTE_KEYS = ("exchange", "symbol", "side", "order_type", "account", "strategy")
attribute_values = st.one_of(
    st.text(max_size=80),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.binary(max_size=8),
    st.decimals(allow_nan=True),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sampled_from([Venue.BINANCE, Level.HIGH]),
    st.builds(Unhashable),
    st.builds(Unprintable),
)
attributes_strategy = st.dictionaries(
    st.one_of(st.sampled_from(ATTRIBUTE_KEYS), st.text(min_size=1, max_size=8)), attribute_values, max_size=4
)
operations = st.lists(
    st.tuples(
        st.sampled_from(EVERY_KIND),
        st.booleans(),  # through a bound handle
        attributes_strategy,
        st.lists(values_strategy, min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=6,
)


def expected_value_reason(value: object, kind: str) -> str | None:
    """Why a value is dropped, from the documented rules alone; ``None`` when it is accepted.

    Numbers other than ``int`` are taken as the float they convert to; ints are compared exactly.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | Fraction):
        return "wrong_type"
    if isinstance(value, Decimal) and value.is_nan():
        return "nan"
    if (
        isinstance(value, Decimal | float)
        and math.isinf(value)
        and not (isinstance(value, Decimal) and value.is_finite())
    ):
        return "infinite"
    number: float | int
    if type(value) is int:
        number = value
    else:
        try:
            number = float(value)
        except OverflowError:
            return "too_large"
        if math.isnan(number):
            return "nan"
    if not -MAX_ABS <= number <= MAX_ABS:
        return "too_large"
    if kind == "counter" and number < 0:
        return "negative"
    return None


def _unusable(value: object) -> bool:
    return isinstance(value, Unprintable)


@dataclass
class Expected:
    """What the default mode must show after a sequence of operations."""

    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    unknown_keys: Counter[str] = field(default_factory=Counter)
    accepted: dict[str, list[float | int]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, reason) of every strict error, in order


def _accepted(value: Any) -> float | int:
    return value if type(value) in (int, float) else float(value)


def _expect(operations_: list[tuple[str, bool, dict[str, Any], list[Any]]]) -> Expected:
    expected = Expected()
    for kind, bound, attributes, values in operations_:
        handle_keys = set(KEYS[kind])
        known = {k: v for k, v in attributes.items() if k in handle_keys}
        unknown = [k for k in attributes if k not in handle_keys]
        unusable = any(_unusable(v) for v in known.values())
        if bound:
            if unusable:
                expected.problems.append((kind, "invalid_attribute"))
            elif unknown:
                expected.problems.append((kind, "unknown_key"))
                expected.unknown_keys.update({kind: len(unknown)})
        for value in values:
            reason = expected_value_reason(value, kind)
            if reason is None and unusable:
                reason = "invalid_attribute"
            if reason is not None:
                expected.dropped[(kind, reason)] += 1
                if not bound or not (unusable or unknown):  # in strict mode such a bind() already raised
                    expected.problems.append((kind, reason))
                continue
            expected.accepted[kind].append(_accepted(value))
            if not bound and unknown:
                expected.problems.append((kind, "unknown_key"))
                expected.unknown_keys.update({kind: len(unknown)})
    return expected


def _attribute_keys() -> dict[str, tuple[str, ...]]:
    with capture() as cap:
        return {kind: cap.telemetry.instrument(name).spec.attribute_keys for kind, (name, _) in KINDS.items()}


KEYS = _attribute_keys()


def _run(tel: tradetel.Telemetry, operations_: list[tuple[str, bool, dict[str, Any], list[Any]]]) -> list[Any]:
    """Run the operations; return the MeasurementErrors raised (strict mode), as (kind, reason)."""
    raised: list[tuple[str, str]] = []
    for kind, bound, attributes, values in operations_:
        name, method = KINDS[kind]
        handle = tel.instrument(name)
        if bound:
            try:
                call = getattr(handle.bind(**attributes), method)
            except MeasurementError as error:
                raised.append((kind, error.reason))
                continue
        else:

            def call(value: Any, handle: Any = handle, method: str = method, attributes: Any = attributes) -> None:
                getattr(handle, method)(value, **attributes)

        for value in values:
            try:
                call(value)
            except MeasurementError as error:
                raised.append((kind, error.reason))
    return raised


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_arbitrary_values_and_attributes(operations_: list[tuple[str, bool, dict[str, Any], list[Any]]]) -> None:
    """No exception in default mode, strict errors for exactly the dropped inputs, exact drop counts and totals."""
    logging.getLogger("tradetel").disabled = True  # hypothesis runs outside caplog; the counts are checked
    try:
        expected = _expect(operations_)
        with capture() as cap:
            assert _run(cap.telemetry, operations_) == []
            _check_counts(cap, expected)
            _check_totals(cap, expected)
        with capture(strict=True) as strict_cap:
            assert _run(strict_cap.telemetry, operations_) == expected.problems
    finally:
        logging.getLogger("tradetel").disabled = False


def _check_counts(cap: Capture, expected: Expected) -> None:
    for kind, (name, _) in KINDS.items():
        for reason in (*VALUE_REASONS, "invalid_attribute"):
            assert cap.dropped(reason, name) == expected.dropped[(kind, reason)], (kind, reason)
        full = cap.telemetry.instrument(name).name
        assert cap.value("tradetel.attributes.dropped", instrument=full) == expected.unknown_keys[kind]
    assert cap.dropped() == sum(expected.dropped.values())


def _check_totals(cap: Capture, expected: Expected) -> None:
    for kind, (name, _) in KINDS.items():
        accepted = expected.accepted[kind]
        series = [value for _, value in cap.series(name)]
        if kind == "gauge":
            assert (accepted[-1] in series) if accepted else series == []
            continue
        if kind == "histogram":
            assert sum(h.count for h in series) == len(accepted)
            _assert_sum([h.sum for h in series], accepted)
        else:
            _assert_sum(series, accepted)


def _assert_sum(recorded: list[float | int], accepted: list[float | int]) -> None:
    if all(type(v) is int for v in (*accepted, *recorded)):
        assert sum(recorded) == sum(accepted)
        return
    # Series add up in their own order: allow float rounding, n ulps of the magnitudes involved.
    bound = (len(accepted) + 1) * sys.float_info.epsilon * math.fsum(abs(float(v)) for v in accepted)
    assert abs(math.fsum(recorded) - math.fsum(float(v) for v in accepted)) <= bound


if __name__ == "__main__":
    print(START)
    print(matrix_markdown(), end="")
    print(END)
