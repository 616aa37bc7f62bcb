"""OTEL_SDK_DISABLED=true makes tradetel a no-op that never raises, and is read as the SDK reads it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import pytest
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.metrics import MeterProvider

import tradetel
from tradetel import ConfigurationError
from tradetel.catalog import Kind
from tradetel.config import load_settings
from tradetel.decorators import counted, exchange_call, order_placement, timed
from tradetel.testing import Capture


@pytest.fixture
def disabled_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED=true in os.environ, where the SDK itself reads it."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "TRADETEL_", "DD_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")


def _export_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "tradetel-export"]


@pytest.mark.usefixtures("disabled_environ")
def test_every_handle_accepts_calls_and_nothing_is_collected() -> None:
    """configure() succeeds; every catalog handle, bound series and histogram timer takes calls; collect() is empty."""
    before = len(_export_threads())
    tel = tradetel.configure(exporters="prometheus,otlp,dogstatsd,console", prometheus_port=0, strict=True)
    try:
        assert tel.settings.disabled is True
        assert tel.settings.exporters == ()
        assert tel.prometheus_url is None
        assert len(_export_threads()) == before
        calls = 0
        for handle in tel.instruments().values():
            method = {
                Kind.COUNTER: "add",
                Kind.UP_DOWN_COUNTER: "add",
                Kind.GAUGE: "set",
                Kind.HISTOGRAM: "record",
            }[handle.spec.kind]
            getattr(handle, method)(1)
            getattr(handle, method)(float("nan"), unknown_attribute="x")  # strict, yet a no-op does not raise
            getattr(handle.bind(), method)(2)
            calls += 3
        with tel.orders.latency.time(exchange="binance", stage="ack"):
            pass
        assert calls == 3 * len(tel.catalog)
        tel.force_flush()
        assert tel.collect().resource_metrics == []
        assert Capture(tel).value("orders.filled") == 0
    finally:
        tel.shutdown()
    assert tel.closed


@pytest.mark.usefixtures("disabled_environ")
def test_decorators_pass_values_and_exceptions_through() -> None:
    """Decorated sync and async functions return and raise exactly as undecorated ones when disabled."""
    tel = tradetel.configure()
    tradetel.set_default(tel)
    try:

        @counted("orders.filled", exchange="binance")
        def fill(amount: int) -> int:
            return amount * 2

        @timed("orders.latency", stage="ack")
        def slow() -> None:
            raise KeyError("boom")

        @exchange_call(endpoint="fetch_ticker")
        async def ticker() -> dict[str, float]:
            return {"last": 1.5}

        @order_placement(exchange="binance")
        def place() -> dict[str, object]:
            return {"status": "closed", "filled": 1.0, "amount": 1.0, "symbol": "BTC/USDT", "side": "buy"}

        assert fill(21) == 42
        with pytest.raises(KeyError, match="boom"):
            slow()
        assert asyncio.run(ticker()) == {"last": 1.5}
        assert place()["status"] == "closed"
        assert tel.collect().resource_metrics == []
    finally:
        tradetel.set_default(None)
        tel.shutdown()


def test_disabled_from_the_given_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED in configure(env=...) alone disables tradetel; os.environ's value does not matter."""
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    tel = tradetel.configure(exporters="otlp", env={"OTEL_SDK_DISABLED": "true"})
    try:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        assert tel.collect().resource_metrics == []
    finally:
        tel.shutdown()


def test_enabled_although_os_environ_disables_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """With OTEL_SDK_DISABLED=true in os.environ but disabled=False given, tradetel records and collects normally."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    tel = tradetel.configure(exporters="none", disabled=False, env={})
    try:
        tel.orders.filled.add(3, exchange="binance", symbol="BTC-USD", side="buy")
        assert Capture(tel).value("orders.filled", exchange="binance") == 3
    finally:
        tel.shutdown()


@pytest.mark.parametrize("value", ["true", "TRUE", " True ", "false", "False", "FALSE "])
def test_value_read_as_the_sdk_reads_it(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """For each valid spelling, tradetel is disabled exactly when the SDK's MeterProvider is."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", value)
    sdk_disabled = isinstance(MeterProvider().get_meter("probe"), NoOpMeter)
    assert load_settings(env={"OTEL_SDK_DISABLED": value}).disabled is sdk_disabled


@pytest.mark.parametrize("value", ["1", "yes", "on", "disabled"])
def test_other_values_are_configuration_errors(value: str) -> None:
    """Intended difference: the SDK reads anything but "true" as false; tradetel names the variable instead."""
    with pytest.raises(ConfigurationError) as raised:
        load_settings(env={"OTEL_SDK_DISABLED": value})
    assert raised.value.setting == "OTEL_SDK_DISABLED"
    assert "true or false" in str(raised.value)


def test_demo_exits_cleanly_when_disabled() -> None:
    """`OTEL_SDK_DISABLED=true tradetel demo --duration 2` runs the bot and exits with status 0."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TRADETEL_", "DD_"))}
    env["OTEL_SDK_DISABLED"] = "true"
    result = subprocess.run(
        [sys.executable, "-m", "tradetel", "demo", "--duration", "2", "--seed", "7"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "exporters none" in result.stdout
    assert "orders=" in result.stdout
