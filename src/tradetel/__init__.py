"""tradetel: OpenTelemetry metrics for trading bots, exported to Prometheus, OTLP and DogStatsD.

Example::

    import tradetel

    with tradetel.configure(service_name="grid-bot") as tel:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
"""

from ._exemplars import exemplar
from ._version import __version__
from .catalog import DEFAULT_CATALOG, Attribute, Catalog, InstrumentSpec, Kind
from .decorators import (
    SignalRejected,
    after,
    count_exceptions,
    counted,
    exchange_call,
    in_flight,
    order_cancel,
    order_placement,
    signal_handler,
    strategy_cycle,
    strategy_stage,
    timed,
    trade_close,
)
from .errors import (
    CatalogError,
    ConfigurationError,
    InvalidAttributeError,
    InvalidValueError,
    MeasurementError,
    TradetelError,
)
from .retrofit import instrument_ccxt, instrument_methods
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
    "SignalRejected",
    "Telemetry",
    "TradetelError",
    "__version__",
    "after",
    "configure",
    "count_exceptions",
    "counted",
    "exchange_call",
    "exemplar",
    "get_default",
    "in_flight",
    "instrument_ccxt",
    "instrument_methods",
    "order_cancel",
    "order_placement",
    "set_default",
    "signal_handler",
    "strategy_cycle",
    "strategy_stage",
    "timed",
    "trade_close",
]
