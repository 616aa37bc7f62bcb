"""Call sites mypy --strict rejects; each line marked ``# E: <code>`` must fail with that error code."""

from __future__ import annotations

from tradetel import Attribute, Telemetry
from tradetel.exporters.base import PushExporter


def record(tel: Telemetry) -> None:
    tel.orders.filed.add(1, exchange="binance")  # E: attr-defined
    tel.orders.filled.add(1, exchnage="binance")  # E: call-arg
    tel.orders.filled.add(1, exchange="binance", stage="ack")  # E: call-arg
    tel.orders.filled.bind(sybmol="BTC-USD")  # E: call-arg
    tel.orders.latency.time(exchange="binance", venue="x")  # E: call-arg
    tel.orders.filled.add("one", exchange="binance")  # E: arg-type
    tel.risk.circuit_breaker.sate.set(1)  # E: attr-defined
    tel.orders.latency.record(exchange="binance")  # E: call-arg


class NoBuild:
    def describe(self) -> str:
        return "nothing to build"


class NoShutdown:
    name = "half"

    def export(self, data: object, timeout: float) -> None:
        pass


Attribute("venue", NoBuild())  # E: arg-type
EXPORTER: PushExporter = NoShutdown()  # E: assignment
