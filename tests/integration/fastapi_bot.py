"""A FastAPI bot with metrics of its own: prometheus-fastapi-instrumentator and OpenTelemetry's instrumentation.

Run by tests/integration/test_coexisting.py as its own process, the way a bot runs:
``python fastapi_bot.py APP_PORT TRADETEL_PORT``. It serves the bot's ``/metrics``
(prometheus_client, with tradetel's families registered on it) on APP_PORT and
tradetel's endpoint (with the bot's registry appended) on TRADETEL_PORT, both on
127.0.0.1, until SIGTERM.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CollectorRegistry, Counter
from prometheus_fastapi_instrumentator import Instrumentator

import tradetel
from tradetel.exporters.prometheus_client import TradetelCollector


def build(tradetel_port: int) -> FastAPI:
    registry = CollectorRegistry()
    signals = Counter("bot_signals", "Trading signals received.", ["source"], registry=registry)
    tel = tradetel.configure(
        service_name="fastapi-bot",
        exporters="prometheus",
        prometheus_port=tradetel_port,
        prometheus_registry=registry,
        set_global_meter_provider=True,
    )
    registry.register(TradetelCollector(tel))

    app = FastAPI()

    @app.post("/signal")
    def signal() -> dict[str, bool]:
        signals.labels("tradingview").inc()
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        tel.orders.latency.record(0.042, exchange="binance", symbol="BTC-USD", order_type="limit")
        return {"accepted": True}

    Instrumentator(registry=registry).instrument(app).expose(app, endpoint="/metrics")
    FastAPIInstrumentor.instrument_app(app)  # records on the global MeterProvider: tradetel's
    return app


def main() -> None:
    app_port, tradetel_port = int(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(build(tradetel_port), host="127.0.0.1", port=app_port, log_level="warning")


if __name__ == "__main__":
    main()
