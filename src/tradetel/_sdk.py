"""The one module that touches OpenTelemetry SDK internals.

tradetel records straight into the SDK's aggregation objects: it looks the
aggregation for an attribute set up once (through the SDK's own
``_get_or_create_aggregation``, so views, cardinality limits and the overflow
series behave exactly as in the SDK) and then updates it directly. This
skips per-call attribute cleaning and hashing, and it lets histograms take
negative values (signed slippage, R-multiples), which the SDK's
``Histogram.record`` refuses although its aggregation handles them.

The SDK version is pinned in ``pyproject.toml``; the equivalence tests compare
this path with the public API on the same input.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal._view_instrument_match import (
    _OVERFLOW_KEY,
    _hash_attributes,
    _ViewInstrumentMatch,
)
from opentelemetry.sdk.metrics._internal.measurement import Measurement
from opentelemetry.sdk.metrics.export import MetricReader

__all__ = ["Measurement", "SeriesStore"]


def view_instrument_match(provider: MeterProvider, reader: MetricReader, instrument: Any) -> _ViewInstrumentMatch:
    """The SDK's per-instrument aggregation table behind ``reader`` (exactly one view per instrument)."""
    storage = provider._measurement_consumer._reader_storages[reader]
    matches = storage._get_or_init_view_instrument_match(instrument)
    if len(matches) != 1:
        raise RuntimeError(f"instrument {instrument.name} matches {len(matches)} views; tradetel expects one")
    match: _ViewInstrumentMatch = matches[0]
    return match


class SeriesStore:
    """Attribute set → SDK aggregation for one instrument, with a bounded lookup cache."""

    __slots__ = ("_cache", "_match", "_max_cache", "overflowed")

    def __init__(self, match: _ViewInstrumentMatch) -> None:
        self._match = match
        self._cache: dict[tuple[tuple[str, str], ...], Any] = {}
        self._max_cache = 2 * match._cardinality_limit + 64
        self.overflowed = False

    def aggregation(self, attributes: dict[str, str]) -> Any:
        """The aggregation that ``attributes`` record into (the overflow series once the limit is reached)."""
        key = tuple(attributes.items())
        found = self._cache.get(key)
        if found is not None:
            return found
        match = self._match
        with match._lock:
            aggregation = match._get_or_create_aggregation(_hash_attributes(attributes), dict(attributes))
            if match._attributes_aggregation.get(_OVERFLOW_KEY) is aggregation:
                self.overflowed = True
        if len(self._cache) < self._max_cache:
            self._cache[key] = aggregation
        return aggregation

    def is_overflow(self, aggregation: Any) -> bool:
        return self.overflowed and self._match._attributes_aggregation.get(_OVERFLOW_KEY) is aggregation
