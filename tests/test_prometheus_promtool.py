"""The Prometheus exposition of every catalog instrument passes `promtool check metrics`."""

from __future__ import annotations

import subprocess

from tradetel.catalog import Kind
from tradetel.exporters.prometheus import render
from tradetel.testing import Capture


def _record_everything(cap: Capture) -> None:
    tel = cap.telemetry
    for name, handle in tel.instruments().items():
        attributes = {key: f"v-{key}" for key in handle.spec.attribute_keys}
        kind = handle.spec.kind
        if kind is Kind.HISTOGRAM:
            tel[name].record(0.5, **attributes)  # type: ignore[attr-defined]
        elif kind is Kind.GAUGE:
            tel[name].set(1.5, **attributes)  # type: ignore[attr-defined]
        else:
            tel[name].add(2, **attributes)  # type: ignore[attr-defined]


def test_every_catalog_instrument_passes_promtool(cap: Capture, promtool: str) -> None:
    """One series of every catalog instrument renders to text that promtool accepts without a lint warning."""
    _record_everything(cap)
    text = render(cap.telemetry.collect())
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode().strip() == "" and result.stderr.decode().strip() == ""
    families = {line.split()[2] for line in text.decode().splitlines() if line.startswith("# TYPE")}
    for spec in cap.telemetry.catalog.values():
        assert cap.telemetry.catalog.prometheus_name(spec) in families


def test_exposition_names_follow_otel_prometheus_rules(cap: Capture) -> None:
    """Counters end in _total and second-based histograms in _seconds, as DESIGN.md promises."""
    tel = cap.telemetry
    tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
    tel.orders.latency.record(0.02, exchange="binance", stage="ack")
    text = render(tel.collect()).decode()
    assert 'trading_orders_filled_total{exchange="binance",side="buy",symbol="BTC-USD"} 1\n' in text
    assert 'trading_orders_latency_seconds_bucket{exchange="binance",stage="ack",le="0.025"} 1\n' in text
    assert 'trading_orders_latency_seconds_count{exchange="binance",stage="ack"} 1\n' in text
