"""configure() and the Telemetry object: instruments, policies, drops, lifecycle and ownership."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

import tradetel
from tradetel import ConfigurationError, InstrumentSpec, InvalidAttributeError, InvalidValueError, Kind
from tradetel.testing import Capture, capture


def test_import_has_no_side_effects() -> None:
    """Importing tradetel starts no thread, opens no socket and installs no global provider."""
    code = (
        "import threading, tradetel, tradetel.testing, tradetel.exporters.prometheus;"
        "from opentelemetry import metrics;"
        "assert threading.active_count() == 1, threading.enumerate();"
        "assert tradetel.get_default() is None;"
        "assert type(metrics.get_meter_provider()).__name__ == '_ProxyMeterProvider'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_call_site_api_records_through_catalog(cap: Capture) -> None:
    """The documented call-site shape records counters, histograms, gauges and up-down counters."""
    tel = cap.telemetry
    tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
    tel.orders.filled.add(2, exchange="binance", symbol="BTC-USD", side="buy")
    tel.trades.r_multiple.record(1.8, symbol="EURUSD", strategy="breakout")
    tel.trades.r_multiple.record(-1.0, symbol="EURUSD", strategy="breakout")
    tel.account.equity.set(10_000, account="main")
    tel.account.equity.set(10_250.5, account="main")
    tel.orders.pending.add(3, exchange="binance", symbol="BTC-USD")
    tel.orders.pending.add(-2, exchange="binance", symbol="BTC-USD")
    assert cap.value("orders.filled", symbol="BTC-USD", side="buy") == 3
    r_multiple = cap.histogram("trades.r_multiple", strategy="breakout")
    assert (r_multiple.count, r_multiple.sum, r_multiple.min, r_multiple.max) == (2, 0.8, -1.0, 1.8)
    assert cap.value("account.equity", account="main") == 10_250.5
    assert cap.value("trading.orders.pending") == 1


def test_policies_normalise_values(cap: Capture) -> None:
    """Attribute values go through the catalog policies: enumerations, reason categories, status classes."""
    tel = cap.telemetry
    tel.orders.rejected.add(1, exchange="binance", side="SHORT", reason="Insufficient balance for order")
    tel.exchange.errors.add(1, exchange="binance", endpoint="create_order", error_type="HTTP 429 Too Many Requests")
    assert cap.value("orders.rejected", side="sell", reason="insufficient_funds") == 1
    assert cap.value("exchange.errors", error_type="rate_limit") == 1


def test_unknown_key_dropped_and_counted(cap: Capture, quiet_tradetel_logs: pytest.LogCaptureFixture) -> None:
    """An attribute key outside the catalog entry is removed, counted once per call and logged once."""
    tel = cap.telemetry
    for _ in range(3):
        tel.orders.filled.add(1, exchange="binance", order_id="123")
    assert cap.series("orders.filled") == [({"exchange": "binance"}, 3)]
    assert cap.value("tradetel.attributes.dropped", key="order_id") == 3
    assert sum("order_id" in r.getMessage() for r in quiet_tradetel_logs.records) == 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "nan"),
        (float("inf"), "infinite"),
        (-1, "negative"),
        ("1", "wrong_type"),
        (None, "wrong_type"),
        (True, "wrong_type"),
        (b"1", "wrong_type"),
        (1e301, "too_large"),
    ],
)
def test_bad_counter_values_are_dropped_and_counted(cap: Capture, value: object, reason: str) -> None:
    """Bad counter increments never raise by default: they are dropped and counted by reason."""
    cap.telemetry.orders.filled.add(value, exchange="binance")  # type: ignore[arg-type]
    assert cap.value("orders.filled") == 0
    assert cap.dropped(reason=reason, instrument="orders.filled") == 1


def test_numeric_types_are_accepted(cap: Capture) -> None:
    """Decimal, Fraction and int subclasses are recorded as numbers."""
    from decimal import Decimal
    from fractions import Fraction

    tel = cap.telemetry
    tel.trades.realized_pnl.add(Decimal("12.5"), symbol="BTC-USD")
    tel.trades.realized_pnl.add(Fraction(1, 2), symbol="BTC-USD")
    assert cap.value("trades.realized_pnl") == 13.0
    assert cap.dropped() == 0


def test_strict_mode_raises_typed_errors(strict_cap: Capture) -> None:
    """In strict mode bad values and unknown keys raise typed errors naming the instrument."""
    tel = strict_cap.telemetry
    with pytest.raises(InvalidValueError, match=r"trading\.orders\.filled.*negative"):
        tel.orders.filled.add(-1)
    with pytest.raises(InvalidAttributeError, match="order_id"):
        tel.orders.filled.add(1, order_id="x")
    assert strict_cap.value("orders.filled") == 0


def test_bound_series_record_into_the_same_series(cap: Capture) -> None:
    """A bound handle and unbound calls with the same attributes feed one series."""
    tel = cap.telemetry
    fills = tel.orders.filled.bind(exchange="binance", symbol="BTC-USD", side="buy")
    fills.add()
    fills.add(4)
    tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
    latency = tel.orders.latency.bind(exchange="binance", stage="ack")
    latency.record(0.01)
    fills.record(1.0)  # wrong method for a counter: dropped and counted
    assert cap.series("orders.filled") == [({"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}, 6)]
    assert cap.histogram("orders.latency").count == 1
    assert cap.dropped(reason="wrong_method") == 1


def test_histogram_time_context_manager(cap: Capture) -> None:
    """Histogram.time() records the duration of the block even when it raises."""
    tel = cap.telemetry
    with pytest.raises(RuntimeError), tel.orders.latency.time(exchange="binance", stage="ack"):
        raise RuntimeError("boom")
    latency = cap.histogram("orders.latency")
    assert latency.count == 1 and 0 <= latency.sum < 1


def test_user_extends_catalog_and_changes_namespace() -> None:
    """Users add their own instruments and pick their own namespace; self-metrics keep `tradetel.`."""
    grid = InstrumentSpec("grid.levels_filled", Kind.COUNTER, "{level}", "Grid levels filled.")
    with capture(catalog=[grid], namespace="acme") as cap:
        cap.telemetry.grid.levels_filled.add(2)
        cap.telemetry.orders.filled.add(1, exchange="x")
        cap.telemetry.orders.filled.add(-1, exchange="x")
        names = {
            m.name for rm in cap.telemetry.collect().resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        }
    assert {"acme.grid.levels_filled", "acme.orders.filled", "tradetel.measurements.dropped"} <= names


def test_catalog_name_clash_with_group_is_rejected() -> None:
    """An instrument whose name is also a group of others is a configuration error, not a silent shadow."""
    clash = InstrumentSpec("orders", Kind.COUNTER, "{order}", "Clashes with the orders group.")
    with pytest.raises(ConfigurationError, match="orders"):
        tradetel.configure(catalog=[clash], exporters="none", env={})


def test_unknown_instrument_access_is_clear(cap: Capture) -> None:
    """A typo in an instrument name raises AttributeError/KeyError naming the missing path."""
    with pytest.raises(AttributeError, match=r"orders\.filed"):
        _ = cap.telemetry.orders.filed
    with pytest.raises(KeyError, match="nope"):
        cap.telemetry.instrument("nope")


def test_resource_carries_service_identity() -> None:
    """The resource has service name, version, environment, instance id and OTEL_RESOURCE_ATTRIBUTES."""
    env = {"OTEL_RESOURCE_ATTRIBUTES": "team=quant,region=eu", "DD_ENV": "paper", "DD_VERSION": "1.2.3"}
    with tradetel.configure(exporters="none", env=env, service_name="grid-bot", instance_id="bot-7") as tel:
        attributes = dict(tel.resource.attributes)
    assert attributes["service.name"] == "grid-bot"
    assert attributes["service.version"] == "1.2.3"
    assert attributes["deployment.environment.name"] == "paper"
    assert attributes["service.instance.id"] == "bot-7"
    assert attributes["team"] == "quant" and attributes["region"] == "eu"


def test_prometheus_server_is_owned_and_closed(free_port: int) -> None:
    """configure() serves /metrics on loopback, and shutdown() closes the port and its thread."""
    tel = tradetel.configure(exporters="prometheus", prometheus_port=free_port, env={})
    tel.orders.filled.add(1, exchange="binance")
    assert tel.prometheus_url == f"http://127.0.0.1:{free_port}/metrics"
    with urllib.request.urlopen(tel.prometheus_url, timeout=5) as response:
        body = response.read().decode()
    assert 'trading_orders_filled_total{exchange="binance"} 1' in body
    tel.shutdown()
    tel.shutdown()  # idempotent
    assert tel.closed
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", free_port), timeout=1):
        pass
    assert not [t for t in threading.enumerate() if t.name == "tradetel-prometheus"]


def test_taken_port_fails_configure_naming_host_and_port() -> None:
    """A port already in use fails configure() with the host, the port and the setting to change."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(ConfigurationError) as info:
            tradetel.configure(exporters="prometheus", prometheus_port=port, env={})
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "OTEL_EXPORTER_PROMETHEUS_PORT" in str(info.value)


def test_default_is_explicit_opt_in(cap: Capture) -> None:
    """No default exists until set_default(); shutdown clears it."""
    assert tradetel.get_default() is None
    with tradetel.configure(exporters="none", env={}) as tel:
        tradetel.set_default(tel)
        assert tradetel.get_default() is tel
    assert tradetel.get_default() is None


def test_config_file_overrides_limits_and_buckets(tmp_path: object) -> None:
    """instruments.<name> in the config file changes an instrument's buckets and series limit."""
    from pathlib import Path

    config = Path(str(tmp_path)) / "tradetel.toml"
    config.write_text(
        '[instruments."orders.latency"]\nbuckets = [0.1, 1.0]\n[instruments."orders.filled"]\ncardinality_limit = 2\n'
    )
    with capture(config_file=str(config)) as cap:
        tel = cap.telemetry
        tel.orders.latency.record(0.5, exchange="x")
        for symbol in ("A", "B", "C", "D"):
            tel.orders.filled.add(1, symbol=symbol)
        assert cap.histogram("orders.latency").bounds == (0.1, 1.0)
        series = cap.series("orders.filled")
        assert len(series) == 3 and sum(v for _, v in series) == 4
        assert ({"otel.metric.overflow": True}, 2) in series
        assert cap.value("tradetel.cardinality.overflow", instrument="trading.orders.filled") == 2


def test_bad_instrument_override_is_a_configuration_error() -> None:
    """Overrides for unknown instruments or with bad values fail at configure()."""
    with pytest.raises(ConfigurationError, match=r"instruments\.orders\.nope"):
        tradetel.configure(exporters="none", env={}, instruments={"orders.nope": {"cardinality_limit": 5}})
    with pytest.raises(ConfigurationError, match=r"instruments\.orders\.filled\.cardinality_limit"):
        tradetel.configure(exporters="none", env={}, instruments={"orders.filled": {"cardinality_limit": 0}})
