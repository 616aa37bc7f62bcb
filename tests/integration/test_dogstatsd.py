"""DogStatsD from tradetel into real consumers: the collector's statsd receiver and the Etsy statsd daemon."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import tradetel

pytestmark = pytest.mark.integration


def _dogstatsd(port: int, service: str, mode: str = "statsd") -> tradetel.Telemetry:
    env = {
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_DOGSTATSD_PORT": str(port),
        "TRADETEL_DOGSTATSD_MODE": mode,
        "OTEL_SERVICE_NAME": service,
    }
    return tradetel.configure(exporters="dogstatsd", export_interval=3600, env=env)


def _send_workload(tel: tradetel.Telemetry, workload: Any) -> None:
    workload.record(tel, 1)
    tel.force_flush()
    workload.record(tel, 2)
    tel.force_flush()


# --- Etsy statsd ----------------------------------------------------------------------------------


def test_etsy_statsd_daemon_reads_counts_gauges_and_histogram_totals(
    etsy_statsd: Callable[..., Any], workload: Any, wait_until: Callable[..., Any]
) -> None:
    """Statsd mode into the Etsy daemon: exact counters, gauges (a negative one too) and histogram count/sum.

    The daemon folds tags into the key as `;key=value` and keeps only [A-Za-z0-9_.;=-]: a `:` inside a tag
    value is dropped (`BTC/USDT:USDT` becomes `BTC-USDTUSDT`). It does not know `d`, and adds those lines
    up as a counter, so distributions are only usable through the exact `.count`/`.sum` counters there.
    """
    daemon = etsy_statsd()
    tags = ";service=etsy-bot"
    with _dogstatsd(daemon.port, "etsy-bot") as tel:
        _send_workload(tel, workload)
        tel.orders.filled.add(1, exchange="binance", symbol="BTC/USDT:USDT", side="sell")
        tel.account.equity.set(-12.5, account="hedge")
        tel.force_flush()
        latency = "trading.orders.latency;exchange=binance;stage=ack" + tags
        wait_until(lambda: _flushed_everything(daemon, latency, workload), "the statsd daemon to flush everything")

    counters, gauges = daemon.counters(), daemon.gauges()
    for (exchange, symbol, side), total in workload.filled.items():
        assert counters[f"trading.orders.filled;exchange={exchange};symbol={symbol};side={side}{tags}"] == total
    assert counters[f"trading.orders.filled;exchange=binance;symbol=BTC-USDTUSDT;side=sell{tags}"] == 1
    assert gauges[f"trading.orders.pending;exchange=binance;symbol=BTC-USD{tags}"] == workload.pending
    assert gauges[f"trading.account.equity;account=main{tags}"] == workload.equity
    assert gauges[f"trading.account.equity;account=hedge{tags}"] == -12.5
    assert counters[latency.replace("latency;", "latency.count;")] == workload.latency_count
    assert counters[latency.replace("latency;", "latency.sum;")] == pytest.approx(workload.latency_sum)
    assert latency in counters  # the `d` lines, added up as a plain counter by this daemon


def _flushed_everything(daemon: Any, latency: str, workload: Any) -> bool:
    count = daemon.counters().get(latency.replace("latency;", "latency.count;"))
    return count == workload.latency_count and any("account=hedge" in key for key in daemon.gauges())
