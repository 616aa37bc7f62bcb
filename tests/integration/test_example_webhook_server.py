"""The webhook receiver example served by uvicorn on 127.0.0.1: scraped by a real Prometheus, and run as a script."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tradetel.testing import Capture

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook_receiver.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_webhook_receiver_served", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_prometheus_scrapes_the_receivers_own_metrics(cap: Capture, prometheus_server: Callable[..., Any]) -> None:
    """A real Prometheus scraping the example app's /metrics answers PromQL with the signal counts sent to it."""
    module = _load()
    batch = module.signals(30, 4, time.time())
    verdicts = Counter(verdict for _, _, verdict in batch)
    with module.serving(module.create_app(cap.telemetry)) as base_url:
        codes = module.send(base_url, batch, deadline=time.monotonic() + 30)
        assert len(codes) == len(batch)
        prometheus = prometheus_server({"receiver": f"{base_url}/metrics"})
        prometheus.wait_for_scrape("receiver")
        assert prometheus.value('sum(trading_signals_received_total{source="tradingview"})') == len(batch)
        assert prometheus.value('trading_signals_rejected_total{reason="stale"}') == verdicts["stale"]
        assert (
            prometheus.value('trading_signals_rejected_total{reason="invalid_signature"}')
            == verdicts["invalid_signature"]
        )
        ok = 'trading_signals_processing_duration_seconds_count{status="ok"}'
        assert prometheus.value(ok) == verdicts["accepted"]
        assert prometheus.value('sum(trading_orders_filled_total{exchange="simex"})') == verdicts["accepted"]
        assert prometheus.value("trading_signals_in_flight") == 0


def test_script_serves_sends_and_stops() -> None:
    """``python examples/webhook_receiver.py`` serves on loopback, sends its signals, prints the counts and exits."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--signals", "20", "--seed", "11", "--duration", "30"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for reason in ("invalid_signature", "stale", "low_confidence", "invalid_payload"):
        assert f'trading_signals_rejected_total{{reason="{reason}",source="tradingview"}} 4' in lines
    assert 'trading_signals_in_flight{source="tradingview"} 0' in lines
    assert time.monotonic() - started < 90
