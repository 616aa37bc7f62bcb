"""A real Prometheus runs the generated rules against the demo bot driven through faults.

The rules are generated at 60 times speed (a minute of the rules is a second here), Prometheus
scrapes the bot every second, and a script injects the faults the alerts exist for: a breaker trip,
an error burst, a fill-ratio drop, a market-data stall, Redis errors, failing exports, a series
limit and a NaN. Then, through the HTTP API: exactly the expected alerts fire, every recording rule
has series, and every query of every dashboard panel returns data.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import tradetel
from tradetel import Telemetry
from tradetel._demo import DemoBot
from tradetel.ops import RULES, artefacts, load_objectives
from tradetel.ops._dashboards import panel_specs
from tradetel.ops._model import Names

pytestmark = pytest.mark.integration

SPEED = 60.0
OBJECTIVES = {"fill_ratio": "0.7", "no_trade_rate": "0.6"}  # the demo bot fills ~80 % and skips ~45 % of cycles

EXPECTED_FIRING = {
    ("CircuitBreakerTripped", ""),
    ("ExchangeAPIErrorBurst", ""),
    ("LowFillRatio", ""),
    ("HighMarketDataLag", ""),
    ("HighRedisErrorRate", ""),
    ("TradetelExportFailing", ""),
    ("TradetelCardinalityOverflow", ""),
    ("TradetelMeasurementsDropped", ""),
    ("SLOErrorBudgetBurn", "fill_ratio/3d"),
    *{("SLOErrorBudgetBurn", f"market_data_freshness/{w}") for w in ("1h", "6h", "1d", "3d")},
    *{("SLOErrorBudgetBurn", f"export_success/{w}") for w in ("1h", "6h", "1d", "3d")},
}


class _Collector:
    """A stand-in OTLP/HTTP receiver that accepts pushes, or answers 503 while ``failing`` is set."""

    def __init__(self) -> None:
        self.failing = threading.Event()
        failing = self.failing

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = 503 if failing.is_set() else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Bot:
    """The demo bot in a thread, plus the platform instruments it does not record, plus injectable faults."""

    def __init__(self, tel: Telemetry) -> None:
        self.tel = tel
        self.demo = DemoBot(tel, seed=11, error_rate=0.0)
        self.faults = threading.Event()
        self.stop = threading.Event()
        self.rng = random.Random(5)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        tick = 0
        while not self.stop.wait(0.05):
            tick += 1
            self.demo.tick(time.monotonic())
            self._platform()
            if self.faults.is_set():
                self._fault(tick)

    def _platform(self) -> None:
        tel, rng = self.tel, self.rng
        tel.platform.bots.set(3, status="running")
        tel.account.exposure.set(0.05, account="demo", kind="pending")
        tel.market_data.websocket.connections.add(0, source="binance-ws")
        tel.strategy.pnl.set(120.0, strategy="breakout", symbol="BTC-USD")
        tel.http.server.requests.add(1, method="POST", route="/webhook/{source}", status_class=200)
        tel.http.server.request.duration.record(rng.uniform(0.002, 0.02), method="POST", route="/webhook/{source}",
                                                status_class=200)  # fmt: skip
        tel.platform.websocket.clients.add(0, endpoint="general")
        tel.storage.operations.add(1, system="redis", operation="GET", collection="prices", status="ok")
        tel.storage.operation.duration.record(rng.uniform(0.0002, 0.002), system="redis", operation="GET")
        tel.signals.received.add(1, source="tradingview", signal_type="entry", symbol="BTC-USD", side="buy")
        tel.signals.processing.duration.record(rng.uniform(0.001, 0.01), source="tradingview", status="ok")
        tel.signals.in_flight.add(0, source="tradingview")
        if rng.random() < 0.2:
            tel.orders.cancelled.add(1, exchange="binance", symbol="BTC-USD", side="sell", order_type="limit")
            tel.signals.rejected.add(1, source="tradingview", reason="invalid payload")
            tel.security.rate_limited.add(1, client="10.1.2.3", route="/webhook/{source}")
            tel.security.allowlist.rejected.add(1, client="10.1.2.3")
            tel.security.validation.errors.add(1, error_type="missing field", field="price")

    def _fault(self, tick: int) -> None:
        tel = self.tel
        tel.risk.circuit_breaker.state.set(1, breaker="drawdown_guard")
        tel.exchange.error_streak.set(3, exchange="kraken")
        tel.exchange.errors.add(1, exchange="kraken", endpoint="fetch_balance", error_type="timeout")
        tel.orders.submitted.add(1, exchange="kraken", symbol="ETH-USD", side="buy", order_type="limit")  # never fills
        for _ in range(10):  # market data arriving 30 s late: a stall
            tel.market_data.lag.record(30.0, source="binance-ws")
        tel.storage.errors.add(1, system="redis", error_type="connection")
        tel.security.audit.events.add(1, event=f"event{tick % 6}", result="success", client="10.1.2.3")
        tel.orders.slippage.record(float("nan"), exchange="kraken", symbol="ETH-USD", side="buy")
        if tick % 20 == 0:
            tel.risk.circuit_breaker.trips.add(1, breaker="drawdown_guard")
            tel.orders.submitted.add(1, exchange="kraken", symbol="ETH-USD", side="buy", order_type="limit", bogus=1)
            tel.storage.operations.add(1, system="cassandra", operation="GET", collection="x", status="ok")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Telemetry, _Bot, _Collector]]:
    collector = _Collector()
    dogstatsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dogstatsd.bind(("127.0.0.1", 0))
    tel = tradetel.configure(
        env={},
        service_name="ops-bot",
        exporters="prometheus,otlp,dogstatsd",
        prometheus_port=0,
        otlp_protocol="http/protobuf",
        otlp_endpoint=collector.url,
        dogstatsd_url=f"udp://127.0.0.1:{dogstatsd.getsockname()[1]}",
        export_interval=1.0,
        export_timeout=2.0,
        instruments={"security.audit.events": {"cardinality_limit": 3}},
    )
    bot = _Bot(tel)
    try:
        yield tel, bot, collector
    finally:
        bot.stop.set()
        if bot.thread.is_alive():
            bot.thread.join(5)
        collector.failing.clear()
        tel.shutdown(timeout=10)
        collector.close()
        dogstatsd.close()


def _firing(prom: Any) -> set[tuple[str, str]]:
    found = set()
    for labels in prom.labels('ALERTS{alertstate="firing"}'):
        detail = f"{labels['slo']}/{labels['long_window']}" if labels["alertname"] == "SLOErrorBudgetBurn" else ""
        found.add((labels["alertname"], detail))
    return found


def test_generated_rules_and_dashboards_on_a_real_prometheus(
    stack: tuple[Telemetry, _Bot, _Collector],
    prometheus_server: Callable[..., Any],
    wait_until: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """Faults fire exactly their alerts, every recording rule has series, every panel query returns data."""
    tel, bot, collector = stack
    objectives = load_objectives(None, OBJECTIVES)
    rules = tmp_path / "rules.yml"
    rules.write_text(artefacts(tel.catalog, objectives, speed=SPEED)[RULES])
    assert tel.prometheus_url is not None
    prom = prometheus_server({"bot": tel.prometheus_url}, rule_files=[rules])
    tel.exchange.requests.add(1, exchange="binance", endpoint="create_order", status="error")  # one early error
    bot.thread.start()
    prom.wait_for_scrape("bot")
    time.sleep(20)  # a healthy stretch: nothing fires
    assert _firing(prom) == set()

    bot.faults.set()
    collector.failing.set()
    seen: list[set[tuple[str, str]]] = []

    def expected_alerts_fire() -> bool:
        seen[:] = [_firing(prom)]
        return seen[0] >= EXPECTED_FIRING

    try:
        wait_until(expected_alerts_fire, "the expected alerts to fire", 90)
    except pytest.fail.Exception:
        pytest.fail(f"missing: {sorted(EXPECTED_FIRING - seen[0])}; firing: {sorted(seen[0])}")
    assert _firing(prom) == EXPECTED_FIRING

    recorded = {
        (labels["__name__"], labels["slo"]) for labels in prom.labels('{__name__=~"tradetel:slo_error_ratio:.*"}')
    }
    windows = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    slos = ("fill_ratio", "order_ack_latency", "market_data_freshness", "exchange_availability", "export_success")
    assert recorded == {(f"tradetel:slo_error_ratio:rate{w}", slo) for w in windows for slo in slos}

    names = Names(tel.catalog, dict.fromkeys(("job", "instance", "exchange", "symbol", "strategy"), ".*"))
    empty = []
    for board, panels in panel_specs(objectives).items():
        for row, panel in panels:
            for template, _ in panel.queries:
                expr = names.resolve(template).replace("$__rate_interval", "10s")
                if not prom.query(expr):
                    empty.append(f"{board} / {row} / {panel.title}: {expr}")
    assert empty == []
