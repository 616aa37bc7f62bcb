"""Recording handles: catalog instruments with label policies in front of OTel instruments.

A handle checks the value and the attribute keys against its catalog entry,
normalises attribute values through the entry's label policies, and records
on the OpenTelemetry instrument. ``bind(**attributes)`` resolves and checks
the attributes once and returns a series handle for hot loops.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from numbers import Real
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ._sdk import Measurement
from .catalog import InstrumentSpec, Kind

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter as OtelCounter
    from opentelemetry.metrics import Histogram as OtelHistogram
    from opentelemetry.metrics import UpDownCounter as OtelUpDownCounter
    from opentelemetry.metrics import _Gauge as OtelGauge

    from ._health import Health
    from ._sdk import SeriesStore
    from .labels import Normalizer

__all__ = ["BoundSeries", "Counter", "Gauge", "Histogram", "Instrument", "UpDownCounter"]

_INF = math.inf
_MAX_ABS = 1e300  # beyond this, sums overflow to inf after a few additions


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
    elif isinstance(value, bool) or not isinstance(value, Real | Decimal):
        health.drop(name, "wrong_type", value)
        return None
    else:
        # numpy scalars, Fraction, Decimal, int/float subclasses
        try:
            number = float(value)
        except (ArithmeticError, ValueError, TypeError):
            health.drop(name, "wrong_type", value)
            return None
        if not math.isfinite(number):
            health.drop(name, "nan" if number != number else "infinite", value)
            return None
    if number > _MAX_ABS or number < -_MAX_ABS:
        health.drop(name, "too_large", value)
        return None
    if non_negative and number < 0:
        health.drop(name, "negative", value)
        return None
    return number


class Instrument:
    """Base of the recording handles; one per catalog entry and :class:`~tradetel.Telemetry`."""

    __slots__ = ("_health", "_keys", "_normalizers", "_otel", "_store", "name", "spec")

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

    def _record(self, value: float | int, attributes: dict[str, str]) -> None:
        store = self._store
        aggregation = store.aggregation(attributes)
        if store.overflowed and store.is_overflow(aggregation):
            self._health.overflow(self.name)
        aggregation.aggregate(Measurement(value, 0, self._otel, None, None), False)  # type: ignore[arg-type]

    def bind(self, **attributes: object) -> BoundSeries:
        """A series handle with these attributes resolved and checked once."""
        return BoundSeries(self, self.attributes(attributes))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} keys={list(self._keys)}>"

    @property
    def otel_instrument(self) -> Any:
        """The underlying OpenTelemetry instrument on the Meter."""
        return self._otel

    def attributes(self, raw: Mapping[str, object]) -> dict[str, str]:
        """Apply the catalog's key allow-list and value policies to ``raw`` attributes."""
        normalizers = self._normalizers
        out: dict[str, str] = {}
        for key, value in raw.items():
            normalize = normalizers.get(key)
            if normalize is None:
                self._health.unknown_key(self.name, key, self._keys)
                continue
            out[key] = normalize(value)
        return out


class Counter(Instrument):
    """A monotonic counter. ``add(amount=1, **attributes)``; negative amounts are dropped.

    Example::

        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
    """

    __slots__ = ()
    _otel: OtelCounter

    def add(self, amount: float = 1, /, **attributes: object) -> None:
        value = check_value(amount, self._health, self.name, non_negative=True)
        if value is not None:
            self._record(value, self.attributes(attributes))


class UpDownCounter(Instrument):
    """A counter that goes up and down: ``add(+1)`` / ``add(-1)``.

    Example::

        tel.orders.pending.add(1, exchange="binance", symbol="BTC-USD")
    """

    __slots__ = ()
    _otel: OtelUpDownCounter

    def add(self, amount: float, /, **attributes: object) -> None:
        value = check_value(amount, self._health, self.name, non_negative=False)
        if value is not None:
            self._record(value, self.attributes(attributes))


class Gauge(Instrument):
    """A sampled value: ``set(value, **attributes)``; the last value wins.

    Example::

        tel.account.equity.set(10_250.0, account="main")
    """

    __slots__ = ()
    _otel: OtelGauge

    def set(self, value: float, /, **attributes: object) -> None:
        checked = check_value(value, self._health, self.name, non_negative=False)
        if checked is not None:
            self._record(checked, self.attributes(attributes))


class Histogram(Instrument):
    """A distribution with the catalog's bucket boundaries: ``record(value, **attributes)``.

    Example::

        tel.trades.r_multiple.record(1.8, symbol="EURUSD", strategy="breakout")
        with tel.orders.latency.time(exchange="binance", stage="ack"):
            place_order()
    """

    __slots__ = ()
    _otel: OtelHistogram

    def record(self, value: float, /, **attributes: object) -> None:
        checked = check_value(value, self._health, self.name, non_negative=False)
        if checked is not None:
            self._record(checked, self.attributes(attributes))

    @contextmanager
    def time(self, **attributes: object) -> Iterator[None]:
        """Record the duration of the ``with`` block in seconds (``perf_counter``), even if it raises."""
        start = perf_counter()
        try:
            yield
        finally:
            self.record(perf_counter() - start, **attributes)


class BoundSeries:
    """One series of an instrument with its attributes resolved and checked once.

    Example::

        btc_fills = tel.orders.filled.bind(exchange="binance", symbol="BTC-USD", side="buy")
        btc_fills.add()
    """

    __slots__ = ("_aggregation", "_attributes", "_health", "_instrument", "_kind", "_name", "_otel", "_overflow")

    def __init__(self, instrument: Instrument, attributes: dict[str, str]) -> None:
        self._instrument = instrument
        self._attributes = attributes
        self._otel = instrument.otel_instrument
        self._health = instrument._health
        self._name = instrument.name
        self._kind = instrument.spec.kind
        store = instrument._store
        self._aggregation = store.aggregation(attributes)
        self._overflow = store.is_overflow(self._aggregation)

    def _record(self, value: float | int) -> None:
        if self._overflow:
            self._health.overflow(self._name)
        self._aggregation.aggregate(Measurement(value, 0, self._otel, None, None), False)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<BoundSeries {self._name} {self._attributes}>"

    @property
    def attributes(self) -> Mapping[str, str]:
        return dict(self._attributes)

    def add(self, amount: float = 1, /) -> None:
        """Counters and up-down counters: add ``amount``."""
        if self._kind is Kind.COUNTER:
            value = check_value(amount, self._health, self._name, non_negative=True)
        elif self._kind is Kind.UP_DOWN_COUNTER:
            value = check_value(amount, self._health, self._name, non_negative=False)
        else:
            self._health.drop(self._name, "wrong_method", "add")
            return
        if value is not None:
            self._record(value)

    def set(self, value: float, /) -> None:
        """Gauges: set the value."""
        if self._kind is not Kind.GAUGE:
            self._health.drop(self._name, "wrong_method", "set")
            return
        checked = check_value(value, self._health, self._name, non_negative=False)
        if checked is not None:
            self._record(checked)

    def record(self, value: float, /) -> None:
        """Histograms: record one value."""
        if self._kind is not Kind.HISTOGRAM:
            self._health.drop(self._name, "wrong_method", "record")
            return
        checked = check_value(value, self._health, self._name, non_negative=False)
        if checked is not None:
            self._record(checked)


HANDLE_TYPES: dict[Kind, type[Instrument]] = {
    Kind.COUNTER: Counter,
    Kind.UP_DOWN_COUNTER: UpDownCounter,
    Kind.GAUGE: Gauge,
    Kind.HISTOGRAM: Histogram,
}
