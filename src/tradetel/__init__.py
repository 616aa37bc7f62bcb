"""tradetel: OpenTelemetry metrics for trading bots, exported to Prometheus, OTLP and DogStatsD.

Example::

    import tradetel

    with tradetel.configure(service_name="grid-bot") as tel:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
"""

from ._version import __version__
from .catalog import DEFAULT_CATALOG, Attribute, Catalog, InstrumentSpec, Kind
from .errors import (
    CatalogError,
    ConfigurationError,
    InvalidAttributeError,
    InvalidValueError,
    MeasurementError,
    TradetelError,
)
from .telemetry import Telemetry, configure, get_default, set_default

__all__ = [
    "DEFAULT_CATALOG",
    "Attribute",
    "Catalog",
    "CatalogError",
    "ConfigurationError",
    "InstrumentSpec",
    "InvalidAttributeError",
    "InvalidValueError",
    "Kind",
    "MeasurementError",
    "Telemetry",
    "TradetelError",
    "__version__",
    "configure",
    "get_default",
    "set_default",
]
