"""DogStatsD from tradetel into real consumers: the collector's statsd receiver and the Etsy statsd daemon."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import tradetel

pytestmark = pytest.mark.integration


def _dogstatsd(port: int, service: str, mode: str = "statsd", **more: str) -> tradetel.Telemetry:
    env = {
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_DOGSTATSD_PORT": str(port),
        "TRADETEL_DOGSTATSD_MODE": mode,
        "OTEL_SERVICE_NAME": service,
        **more,
    }
    return tradetel.configure(exporters="dogstatsd", export_interval=3600, env=env)


def _send_workload(tel: tradetel.Telemetry, workload: Any) -> None:
    workload.record(tel, 1)
    tel.force_flush()
    workload.record(tel, 2)
    tel.force_flush()


SLIPPAGE_BP = (-12.0, -7.0, -6.0, -3.0, 4.0)  # median -6 bp

# --- the collector's statsd receiver --------------------------------------------------------------


def test_collector_statsd_receiver_gives_exact_totals_tags_and_buckets(
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    prometheus_server: Callable[..., Any],
    workload: Any,
) -> None:
    """Statsd mode into agent.yaml's statsd receiver, read through its Prometheus exporter by a real Prometheus.

    Names, tags (with a `:` inside a value), counter totals and gauges (a negative one too) are exact; the
    histogram's count is exact from the weighted `d` lines and from `.count`, its sum exact from `.sum`, and
    its median and 90th percentile fall in the buckets of the true ones, and a signed histogram (slippage in
    basis points) keeps a negative median in its catalog bucket.
    """
    env = collector_env()
    otel = collector("agent.yaml", env)
    prom = prometheus_server({"agent": otel.metrics_url})
    dd = {"DD_ENV": "paper", "DD_VERSION": "1.4.0"}
    with _dogstatsd(int(env["STATSD_PORT"]), "dsd-bot", **dd) as tel:
        _send_workload(tel, workload)
        workload.wait_for_totals(prom, "agent")
        tel.orders.filled.add(1, exchange="binance", symbol="BTC/USDT:USDT", side="sell")
        tel.account.equity.set(-12.5, account="hedge")
        for slippage_bp in SLIPPAGE_BP:
            tel.orders.slippage.record(slippage_bp, exchange="binance", symbol="BTC-USD", side="buy")
        tel.force_flush()
        prom.wait_for_value('trading_account_equity{account="hedge"}', -12.5)
        prom.wait_for_value('sum(trading_orders_slippage_count_total{job="agent"})', len(SLIPPAGE_BP))

    unified = {"env": "paper", "service": "dsd-bot", "version": "1.4.0"}
    (labels,) = prom.labels('trading_orders_filled_total{exchange="binance",symbol="BTC-USD"}')
    assert {k: labels[k] for k in ("exchange", "symbol", "side", "metric_type", *unified)} == {
        "exchange": "binance",
        "symbol": "BTC-USD",
        "side": "buy",
        "metric_type": "counter",
        **unified,
    }
    assert prom.value('trading_orders_filled_total{symbol="BTC/USDT:USDT"}') == 1

    selector = '{job="agent",exchange="binance",stage="ack"}'
    assert prom.value(f"trading_orders_latency_count_total{selector}") == workload.latency_count
    assert prom.value(f"trading_orders_latency_sum_total{selector}") == pytest.approx(workload.latency_sum, rel=1e-9)
    workload.check_classic_histogram(prom, "agent", "trading_orders_latency", exact_sum=False)
    p90 = prom.value(f"histogram_quantile(0.9, sum by (le) (trading_orders_latency_bucket{selector}))")
    assert 2.5 < p90 <= 5.0  # the true 90th percentile, 3.0 s, is in tradetel's bucket (2.5, 5]
    # agent.yaml gives the signed slippage histogram its catalog bounds: the median stays negative.
    slippage = prom.value('histogram_quantile(0.5, sum by (le) (trading_orders_slippage_bucket{job="agent"}))')
    assert -10 < slippage <= -5  # the true median, -6 bp, is in the catalog bucket (-10, -5]


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
