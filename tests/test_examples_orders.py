"""The order-tracking examples run offline and seeded; their metrics equal the engine's and the venue's records."""

from __future__ import annotations

import subprocess
import sys

import pytest

from test_examples import EXAMPLES, load  # one way to import an example script
from tradetel.testing import Capture


def test_backtest_engine_that_fills_later(cap: Capture) -> None:
    """Orders filled over later bars or expired: counts, fill ratios, slippage and time in book equal the engine's."""
    module = load("backtest_orders")
    engine = module.run(cap.telemetry, bars_count=300, seed=7)
    closed = engine.closed
    filled = [o for o in closed if o.status == "filled"]
    expired = [o for o in closed if o.status == "expired"]
    assert filled and expired and any(0 < o.filled < o.amount for o in expired)
    assert cap.value("orders.submitted", exchange="backtest", intent="entry") == engine.next_id
    assert cap.value("orders.filled", intent="entry") == len(filled)
    assert cap.value("orders.expired") == len(expired)
    assert cap.value("orders.pending") == len(engine.open)
    partial = [o for o in closed if o.fills > 1 or (o.status == "expired" and o.fills)]
    partial += [o for o in engine.open.values() if o.fills]
    assert cap.value("orders.partially_filled") == len(partial)
    ratios = cap.histogram("orders.fill_ratio")
    assert ratios.count == len(closed)
    assert ratios.sum == pytest.approx(sum(min(o.filled / o.amount, 1.0) for o in closed))
    traded = [o for o in closed if o.filled > 0]
    expected = sum((1 if o.side == "buy" else -1) * (o.cost / o.filled - o.limit) / o.limit * 1e4 for o in traded)
    assert cap.histogram("orders.slippage", reference="limit").sum == pytest.approx(expected)
    assert cap.histogram("orders.slippage", reference="decision").count == len(traded)
    book = cap.histogram("orders.time_in_book", clock="exchange")
    assert book.count == len(closed)
    assert book.sum == pytest.approx(sum(o.closed_bar - o.placed_bar for o in closed) * module.BAR_SECONDS)
    assert cap.dropped() == 0


def test_fix_venue_with_resends_and_late_reports(cap: Capture) -> None:
    """Resent and reordered ExecutionReports give exactly the venue's outcomes, fills and rejection reasons."""
    module = load("fix_venue")
    venue = module.run(cap.telemetry, orders=300, seed=3)
    states = ("filled", "cancelled", "expired", "rejected")
    outcomes = {state: sum(1 for o in venue.orders if o.outcome == state) for state in states}
    assert all(outcomes.values())
    for state, count in outcomes.items():
        assert cap.value(f"orders.{state}", exchange="fixvenue") == count, state
    assert cap.value("orders.rejected", reason="limit_exceeded") == outcomes["rejected"]
    assert cap.value("orders.pending") == 0
    partial = sum(1 for o in venue.orders if o.fills and (o.outcome != "filled" or len(o.fills) > 1))
    assert cap.value("orders.partially_filled") == partial
    ended = [o for o in venue.orders if o.outcome != "rejected"]
    ratios = cap.histogram("orders.fill_ratio")
    assert ratios.count == len(ended)
    assert ratios.sum == pytest.approx(sum(sum(q for q, _ in o.fills) / o.quantity for o in ended))
    traded = [o for o in ended if o.fills]
    vwap = [sum(q * p for q, p in o.fills) / sum(q for q, _ in o.fills) for o in traded]
    signs = [1 if o.side == "buy" else -1 for o in traded]
    expected = sum(s * (v - o.price) / o.price * 1e4 for s, o, v in zip(signs, traded, vwap, strict=True))
    assert cap.histogram("orders.slippage", reference="limit").sum == pytest.approx(expected)
    assert cap.dropped() == 0


@pytest.mark.parametrize(
    ("script", "arguments", "expected"),
    [("backtest_orders.py", ["--bars", "90"], "still open"), ("fix_venue.py", ["--orders", "40"], "pending         0")],
)
def test_order_example_runs_as_a_script(script: str, arguments: list[str], expected: str) -> None:
    """Each order example runs as ``python examples/<name>.py`` and prints its summary."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *arguments], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert any(line.startswith(expected) for line in result.stdout.splitlines()), result.stdout
