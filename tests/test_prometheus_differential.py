"""tradetel's exposition against opentelemetry-exporter-prometheus for the same collection, in both formats.

The stock exporter turns the same ``MetricsData`` into ``prometheus_client`` families; both outputs are
parsed with ``prometheus_client``'s parsers and compared sample by sample. The intended differences
(docs/backends/prometheus.md) are removed first: the stock exporter adds ``otel_scope_*`` labels to every
series, empty labels (``otel_metric_overflow=""`` on every series of a metric that overflowed, the
other keys on the overflow series), and ``_created`` samples in OpenMetrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import prometheus_client
import pytest
from opentelemetry.exporter.prometheus import _CustomCollector
from opentelemetry.sdk.metrics.export import MetricsData
from prometheus_client import openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

import tradetel
from tradetel.exporters.prometheus import render, render_openmetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _stock(data: MetricsData, openmetrics_format: bool) -> bytes:
    registry = prometheus_client.CollectorRegistry()
    collector = _CustomCollector(disable_target_info=False)
    collector.add_metrics_data(data)
    registry.register(collector)
    return (openmetrics.exposition.generate_latest if openmetrics_format else prometheus_client.generate_latest)(
        registry
    )


def _samples(families: Iterable[Any]) -> Samples:
    out: Samples = {}
    for family in families:
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            # An empty label is no label to Prometheus; the stock exporter pads every series with them.
            labels = {k: v for k, v in sample.labels.items() if not k.startswith("otel_scope_") and v != ""}
            if "le" in labels:
                labels["le"] = repr(float(labels["le"]))  # le="1" and le="1.0" are the same bound
            out[(sample.name, tuple(sorted(labels.items())))] = sample.value
    return out


def _record(tel: tradetel.Telemetry) -> None:
    for index in range(5):
        tel.orders.filled.add(index + 1, exchange="binance", symbol=f"S{index}-USD", side="buy")
    tel.orders.latency.record(0.02, exchange="binance", stage="ack")
    tel.orders.latency.record(3.5, exchange="kraken", stage="fill")
    tel.account.equity.set(10250.5, account="main")
    tel.orders.pending.add(4, exchange="binance", symbol="BTC-USD")
    tel.orders.pending.add(-1, exchange="binance", symbol="BTC-USD")


@pytest.mark.parametrize(
    ("ours", "parse", "openmetrics_format"),
    [(render, parse_text, False), (render_openmetrics, parse_openmetrics, True)],
    ids=["text", "openmetrics"],
)
def test_same_samples_as_the_stock_exporter(
    ours: Callable[..., bytes], parse: Callable[[str], Iterable[Any]], openmetrics_format: bool
) -> None:
    """Every sample name, label set and value is the stock exporter's, once the intended differences are removed."""
    overrides = {"orders.filled": {"cardinality_limit": 3}}
    with tradetel.configure(exporters="none", env={}, instruments=overrides, service_name="diff-bot") as tel:
        _record(tel)
        data = tel.collect()
    mine = _samples(parse(ours(data).decode()))
    theirs = _samples(parse(_stock(data, openmetrics_format).decode()))
    assert mine == theirs
    overflow = [labels for (name, labels) in mine if ("otel_metric_overflow", "true") in labels]
    assert len(overflow) == 1 and sum(v for (n, _), v in mine.items() if n == "trading_orders_filled_total") == 15
