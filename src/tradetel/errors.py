"""Exceptions raised by tradetel.

The tree::

    TradetelError
    ├── ConfigurationError      a setting, catalog entry, view or policy is wrong (start-up)
    │   └── CatalogError        an instrument spec is malformed or duplicated
    └── MeasurementError        a bad measurement, raised only in strict mode
        ├── InvalidValueError   NaN, infinity, wrong type, negative counter increment
        └── InvalidAttributeError
                                unknown attribute key or unusable attribute value

Configuration errors always raise, at start-up. Measurement errors raise only
when ``strict=True``; otherwise the measurement is dropped, counted in
``tradetel.measurements.dropped`` and logged once.
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "ConfigurationError",
    "InvalidAttributeError",
    "InvalidValueError",
    "MeasurementError",
    "TradetelError",
]


class TradetelError(Exception):
    """Base class of every exception tradetel raises."""


class ConfigurationError(TradetelError, ValueError):
    """A setting has a value tradetel cannot use.

    The message names the setting, the bad value and the accepted forms, so
    that one line in a log is enough to fix it.
    """

    def __init__(self, setting: str, value: object, accepted: str, *, secret: bool = False) -> None:
        self.setting = setting
        self.value = "<redacted>" if secret else value
        self.accepted = accepted
        super().__init__(f"{setting}={self.value!r} is invalid: expected {accepted}")


class CatalogError(ConfigurationError):
    """An instrument spec in the catalog is malformed or conflicts with another."""


class MeasurementError(TradetelError, ValueError):
    """A measurement was rejected (raised only in strict mode)."""

    def __init__(self, instrument: str, reason: str, detail: str) -> None:
        self.instrument = instrument
        self.reason = reason
        super().__init__(f"{instrument}: {detail} (reason={reason})")


class InvalidValueError(MeasurementError):
    """The measured value is not a finite number acceptable to the instrument."""


class InvalidAttributeError(MeasurementError):
    """An attribute key is not allowed for the instrument, or its value is unusable."""
