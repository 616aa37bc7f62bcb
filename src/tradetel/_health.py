"""tradetel's own health accounting: dropped measurements, unknown keys, export failures.

Problems on the hot path are counted in tradetel's self-metrics and logged
once per (instrument, reason) so that a bad call inside a tight loop cannot
flood the log; at most :data:`MAX_LOGGED` distinct pairs are remembered, so a
flood of distinct unknown keys cannot grow memory or the log either. In strict
mode the caller gets a typed error instead.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .errors import InvalidAttributeError, InvalidValueError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from opentelemetry.metrics import Counter, Histogram

    from ._instruments import Instrument

_logger = logging.getLogger("tradetel")

MAX_LOGGED = 1000
"""Distinct (subject, reason) pairs logged per Health; later ones are only counted."""


class Health:
    """Counts and logs (once) what tradetel had to drop, fold or failed to export."""

    __slots__ = (
        "_dropped",
        "_export_duration",
        "_export_failures",
        "_lock",
        "_logged",
        "_overflow",
        "_overflow_series",
        "_saturated",
        "_unknown_keys",
        "strict",
    )

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self._dropped: Counter | None = None
        self._unknown_keys: Counter | None = None
        self._export_failures: Counter | None = None
        self._overflow: Instrument | None = None
        self._overflow_series: dict[str, Callable[[float], None]] = {}
        self._export_duration: Histogram | None = None
        self._logged: set[tuple[str, str]] = set()
        self._saturated = False
        self._lock = threading.Lock()

    def bind(
        self,
        dropped: Counter,
        unknown_keys: Counter,
        export_failures: Counter,
        overflow: Instrument,
        export_duration: Histogram | None = None,
    ) -> None:
        self._dropped = dropped
        self._unknown_keys = unknown_keys
        self._export_failures = export_failures
        self._overflow = overflow
        self._export_duration = export_duration

    def start_at_zero(self, failures: Iterable[tuple[str, str]], instruments: Iterable[str]) -> None:
        """Create export-failure and overflow series at 0, before anything fails.

        A counter series that first appears with its first event hides that event from
        ``increase()``, and so from an alert on it; created at start-up, the first failure counts.
        """
        if self._export_failures is not None:
            for exporter, reason in failures:
                self._export_failures.add(0, {"exporter": exporter, "reason": reason})
        for instrument in instruments:
            self._overflow_counter(instrument)(0)

    def exported(self, exporter: str, seconds: float) -> None:
        """One push to ``exporter`` took ``seconds``, whether it succeeded or not."""
        if self._export_duration is not None:
            self._export_duration.record(seconds, {"exporter": exporter})

    def overflow(self, instrument: str) -> None:
        """A measurement landed in the instrument's overflow series: its series limit is reached.

        Counted through a series of ``tradetel.cardinality.overflow`` bound once per instrument: a
        plain aggregation update, so that a flood into the overflow series stays cheap per call.
        """
        add = self._overflow_series.get(instrument)
        if add is None:
            add = self._overflow_counter(instrument)
        add(1)
        self.log_once(
            instrument,
            "cardinality_overflow",
            "tradetel: %s reached its series limit; new attribute sets go to the overflow series",
            instrument,
        )

    def _overflow_counter(self, instrument: str) -> Callable[[float], None]:
        overflow = self._overflow
        if overflow is None:
            return _ignore
        with self._lock:
            add = self._overflow_series.get(instrument)
            if add is None:
                # The self-metric reaching its own limit is logged, not counted in itself: a bound series
                # of it would call back here on every add, and every count would be counted again.
                add = _ignore if instrument == overflow.name else overflow.bind(instrument=instrument).add
                self._overflow_series[instrument] = add
        return add

    def log_once(self, subject: str, reason: str, message: str, *args: object, level: int = logging.WARNING) -> None:
        key = (subject, reason)
        if key in self._logged:
            return
        with self._lock:
            if key in self._logged:
                return
            if len(self._logged) >= MAX_LOGGED:
                if self._saturated:
                    return
                self._saturated = True
                full = True
            else:
                self._logged.add(key)
                full = False
        if full:
            _logger.warning("tradetel: %d distinct problems logged; further ones are only counted", MAX_LOGGED)
            return
        _logger.log(level, message + " (logged once per %s and reason)", *args, subject)

    def drop(self, instrument: str, reason: str, value: object, cause: BaseException | None = None) -> None:
        """A measurement was rejected: count it, log once, raise in strict mode (chained from ``cause``)."""
        if self.strict:
            raise InvalidValueError(instrument, reason, f"measurement {_short(value)} rejected") from cause
        if self._dropped is not None:
            self._dropped.add(1, {"instrument": instrument, "reason": reason})
        self.log_once(
            instrument, reason, "tradetel dropped a measurement of %s: %s (value %s)", instrument, reason, _short(value)
        )

    def unreadable(self, subject: str, reason: str, detail: str) -> None:
        """A decorator could not read what a call gave it: what depends on it is dropped (raised in strict mode).

        ``subject`` names the decorator and the function (``trade_close(close_position)``); ``detail``
        says what was missing or of the wrong type, without quoting values.
        """
        if self.strict:
            raise InvalidValueError(subject, reason, detail)
        if self._dropped is not None:
            self._dropped.add(1, {"instrument": subject, "reason": reason})
        self.log_once(subject, reason, "tradetel: %s recorded nothing of this call's result: %s", subject, detail)

    def unknown_key(self, instrument: str, key: str, allowed: tuple[str, ...]) -> None:
        """An attribute key outside the catalog entry: the attribute is dropped, the measurement kept."""
        if self.strict:
            raise InvalidAttributeError(
                instrument, "unknown_key", f"attribute {key!r} is not one of {', '.join(allowed) or '(none)'}"
            )
        if self._unknown_keys is not None:
            self._unknown_keys.add(1, {"instrument": instrument, "key": key[:64]})
        self.log_once(
            instrument,
            "unknown_key:" + key[:64],
            "tradetel dropped attribute %r of %s: allowed keys are %s",
            key[:64],
            instrument,
            ", ".join(allowed) or "(none)",
        )

    def exemplar_attribute_dropped(self, instrument: str, key: str, why: str) -> None:
        """An exemplar attribute was left out of an exemplar (the measurement and the rest are kept); never raised."""
        if self._unknown_keys is not None:
            self._unknown_keys.add(1, {"instrument": instrument, "key": ("exemplar." + key)[:64]})
        self.log_once(
            instrument,
            "exemplar:" + key[:64],
            "tradetel left exemplar attribute %r out of exemplars of %s: %s; counted in tradetel.attributes.dropped",
            key[:64],
            instrument,
            why,
        )

    def invalid_attribute(
        self, instrument: str, key: str, value: object, error: BaseException, *, count: bool = True
    ) -> None:
        """An attribute value could not be rendered as text: the measurement is dropped (raised in strict mode).

        ``count=False`` for ``bind()``, which records nothing itself: its measurements are counted.
        Neither the value nor the error message is logged: rendering the value is what failed, and the
        message may quote it. Their types are enough to find the call.
        """
        detail = f"attribute {key!r}: its {_type_name(value)} value cannot be rendered as text ({_type_name(error)})"
        if self.strict:
            raise InvalidAttributeError(instrument, "invalid_attribute", detail) from error
        if count and self._dropped is not None:
            self._dropped.add(1, {"instrument": instrument, "reason": "invalid_attribute"})
        self.log_once(instrument, "invalid_attribute", "tradetel dropped a measurement of %s: %s", instrument, detail)

    def export_failed(self, exporter: str, reason: str, detail: str) -> None:
        """An export attempt failed; never raised, counted per exporter."""
        if self._export_failures is not None:
            self._export_failures.add(1, {"exporter": exporter, "reason": reason})
        self.log_once("exporter " + exporter, reason, "tradetel export to %s failed: %s", exporter, detail)


def _ignore(amount: float) -> None:
    """The overflow count before :meth:`Health.bind`: nothing to count into yet."""


def _type_name(value: object) -> str:
    return type(value).__qualname__


def _short(value: object) -> str:
    """A short repr for a log line; never raises (a repr may fail, an int may be too long to print)."""
    try:
        text = repr(value)
    except Exception:
        return f"<{_type_name(value)} without a usable repr>"
    return text if len(text) <= 60 else text[:57] + "..."
