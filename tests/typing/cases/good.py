"""Call sites mypy --strict accepts: the default catalog's instruments with their own attribute keys."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.metrics.export import MetricsData

from tradetel import Attribute, Telemetry
from tradetel.exporters.base import PushExporter
from tradetel.instruments import BoundSeries, Counter, Histogram, Instrument
from tradetel.labels import LabelPolicy, Normalizer, OneOf


def record(tel: Telemetry) -> None:
    tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
    tel.orders.filled.add()
    tel.orders.pending.add(-1, exchange="binance", symbol="BTC-USD")
    tel.account.equity.set(10_250.0, account="main")
    tel.orders.latency.record(0.2, exchange="binance", stage="ack")
    tel.risk.circuit_breaker.state.set(1, breaker="daily_loss")
    with tel.orders.latency.time(exchange="binance", stage="fill"):
        pass
    fills: BoundSeries = tel.orders.filled.bind(exchange="binance", symbol="BTC-USD", side="buy")
    fills.add(2)
    counter: Counter = tel.orders.filled
    histogram: Histogram = tel.orders.latency
    counter.add(1, exchange="kraken")
    histogram.record(0.1, stage="ack")


def loosely(tel: Telemetry) -> None:
    """Custom catalogs: a name looked up at run time is an Instrument; a custom domain is not checked."""
    handle: Instrument = tel["grid.levels_filled"]
    handle.add(1, grid="eth")
    tel.instrument("grid.levels_filled").add(1)
    tel.grid.levels_filled.add(1, grid="eth")


@dataclass(frozen=True)
class Venue:
    """A label policy declaring everything tradetel calls on one."""

    bound = 3

    def describe(self) -> str:
        return "cex, dex or otc"

    def build(self) -> Normalizer:
        return OneOf(("cex", "dex", "otc")).build()


class Points:
    """A user-written push exporter."""

    name = "points"

    def export(self, data: MetricsData, timeout: float) -> None:
        pass

    def shutdown(self, timeout: float) -> None:
        pass


VENUE = Attribute("venue", Venue())
POLICY: LabelPolicy = Venue()
EXPORTER: PushExporter = Points()
