"""The examples run, offline and seeded, and their metrics equal what the example code itself counted."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tradetel.testing import Capture

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_asyncio_bot_metrics_match_its_tally(cap: Capture) -> None:
    """The retrofitted asyncio bot's orders, fills, rejections, cycles and R-multiples equal its own tally."""
    bot = load("asyncio_bot")
    tally = bot.run(cap.telemetry, cycles=15, seed=5)
    assert tally.orders > 0 and tally.rejected > 0 and tally.partial > 0 and tally.ticker_timeouts > 0
    assert cap.value("strategy.cycles", strategy="grid", status="ok") == tally.cycles == 15
    assert cap.value("orders.submitted", exchange="simex", order_type="limit") == tally.orders
    assert cap.value("orders.filled", exchange="simex") == tally.fills
    assert cap.value("orders.partially_filled", exchange="simex") == tally.partial
    assert cap.value("orders.rejected", reason="insufficient_funds") == tally.rejected
    assert cap.value("orders.cancelled", exchange="simex") == tally.cancels
    assert cap.value("exchange.errors", endpoint="fetch_ticker", error_type="timeout") == tally.ticker_timeouts
    assert cap.value("exchange.requests", endpoint="fetch_ticker") == 15 * 3
    r = cap.histogram("trades.r_multiple", strategy="grid")
    assert r.count == len(tally.r_multiples)
    assert r.sum == pytest.approx(sum(tally.r_multiples))
    outcomes = Counter("win" if x > 0 else "loss" if x < 0 else "breakeven" for x in tally.r_multiples)
    assert {outcome: cap.value("trades.closed", outcome=outcome) for outcome in outcomes} == dict(outcomes)
    assert cap.value("trades.closed") == len(tally.r_multiples)
    assert cap.histogram("strategy.stage.duration", stage="signals").count > 0
    assert cap.histogram("orders.slippage").count == tally.fills + tally.partial


def test_asyncio_bot_is_deterministic(cap: Capture) -> None:
    """Two runs with the same seed give the same tally."""
    bot = load("asyncio_bot")
    assert bot.run(cap.telemetry, cycles=5, seed=9) == bot.run(cap.telemetry, cycles=5, seed=9)


def test_threaded_bot_metrics_match_its_tally(cap: Capture) -> None:
    """Decorators applied at import record into the default telemetry from four threads, losing nothing."""
    bot = load("threaded_bot")
    tally = bot.run(cap.telemetry, ticks=40, seed=3)
    assert cap.value("strategy.cycles", strategy="momentum", status="ok") == tally.traded
    assert cap.value("strategy.cycles", strategy="momentum", status="skipped") == tally.skipped
    assert tally.traded + tally.skipped == 4 * 40
    assert cap.value("orders.submitted", exchange="simex") == tally.traded
    submitted, rejected = cap.value("orders.submitted"), cap.value("orders.rejected", reason="size_constraint")
    assert cap.value("orders.filled") == submitted - rejected
    assert cap.histogram("orders.slippage").count == submitted - rejected
    assert cap.value("orders.pending") == 0
    assert cap.value("exchange.errors", endpoint="fetch_mid", error_type="server_error") > 0
    assert cap.value("exchange.errors", endpoint="tick") == 0  # tick catches everything it expects
    assert cap.value("exchange.requests", endpoint="fetch_mid") == 4 * 40


def test_backtest_metrics_match_its_trades(cap: Capture) -> None:
    """Every bar is a cycle; entries, closed trades, outcomes, R and PnL equal the backtest's own records."""
    module = load("backtest")
    backtest = module.run(cap.telemetry, bars=400, seed=42)
    trades = backtest.trades
    assert len(trades) > 3
    assert cap.value("strategy.cycles", strategy="ma_cross") == 400
    assert cap.value("orders.filled", exchange="backtest", symbol="EUR/USD") == backtest.entries
    r = cap.histogram("trades.r_multiple", symbol="EUR/USD", strategy="ma_cross")
    assert r.count == len(trades)
    assert r.sum == pytest.approx(sum(t.r_multiple for t in trades))
    assert r.min == pytest.approx(min(t.r_multiple for t in trades))
    assert cap.value("trades.realized_pnl") == pytest.approx(sum(t.pnl for t in trades))
    wins = sum(1 for t in trades if t.pnl > 0.05)
    assert cap.value("trades.closed", outcome="win") == wins
    assert cap.value("trades.closed", outcome="loss") == sum(1 for t in trades if t.pnl < -0.05)


def test_webhook_receiver_in_process(cap: Capture) -> None:
    """Signals sent through the ASGI app are counted by verdict, and its own /metrics serves the same values."""
    module = load("webhook_receiver")
    now = 1_700_000_000.0
    app = module.create_app(cap.telemetry, clock=lambda: now)
    batch = module.signals(25, 11, now)

    async def main() -> tuple[list[int], httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
            codes = []
            for body, signature, _ in batch:
                response = await client.post("/webhook/tradingview", content=body, headers={"X-Signature": signature})
                codes.append(response.status_code)
            garbage = await client.post("/webhook/tradingview", content=b"{not json", headers={"X-Signature": "x"})
            return codes, garbage, await client.get("/metrics")

    codes, garbage, metrics = asyncio.run(main())
    verdicts = Counter(verdict for _, _, verdict in batch)
    assert codes == [200 if verdict == "accepted" else 422 for _, _, verdict in batch]
    assert garbage.status_code == 422
    assert cap.value("signals.received", source="tradingview") == 26
    rejected = {a["reason"]: v for a, v in cap.series("signals.rejected")}
    assert rejected == {
        "invalid_signature": verdicts["invalid_signature"] + 1,  # the garbage body is not signed either
        "stale": verdicts["stale"],
        "low_confidence": verdicts["low_confidence"],
        "invalid_payload": verdicts["invalid_payload"],
    }
    assert cap.histogram("signals.processing.duration", status="ok").count == verdicts["accepted"]
    assert cap.value("signals.in_flight") == 0
    assert cap.value("orders.filled", exchange="simex") == verdicts["accepted"]
    assert cap.histogram("orders.slippage").sum == pytest.approx(2.0 * verdicts["accepted"])
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    line = f'trading_signals_rejected_total{{reason="stale",source="tradingview"}} {verdicts["stale"]}'
    assert line in metrics.text.splitlines()


@pytest.mark.parametrize(
    ("script", "arguments", "expected"),
    [
        ("asyncio_bot.py", ["--cycles", "4", "--seed", "2"], "cycles            4 (bot counted 4)"),
        ("threaded_bot.py", ["--ticks", "5"], "orders in flight    0"),
        ("backtest.py", ["--bars", "120"], "bars (cycles)   120"),
    ],
)
def test_example_runs_as_a_script(script: str, arguments: list[str], expected: str) -> None:
    """Each offline example runs as ``python examples/<name>.py`` and prints its summary within seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *arguments], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout.splitlines()
    assert time.monotonic() - started < 60
