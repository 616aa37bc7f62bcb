"""The demo's --ticks and --counts: a known number of loop iterations and an independent count of what it recorded."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from tradetel import _demo
from tradetel.testing import capture


def test_counts_match_what_tradetel_recorded() -> None:
    """After N ticks, the bot's own counts equal the totals tradetel holds for the instruments they describe."""
    with capture() as cap:
        bot = _demo.run(cap.telemetry, None, io.StringIO(), seed=11, ticks=300, tick=0.0, quiet=True)
        counts = bot.counts()
        assert counts["ticks"] == 300
        assert cap.value("market_data.updates") == counts["ticks"] * counts["symbols"]
        for symbol in _demo.SYMBOLS:
            assert cap.value("market_data.updates", symbol=symbol) == counts["ticks"]
        assert cap.value("strategy.cycles") == counts["cycles"] > 0
        assert cap.value("orders.rejected") == counts["rejects"] > 0
        assert cap.value("trades.closed") == counts["trades"] > 0
        assert cap.value("risk.circuit_breaker.trips") == counts["trips"]


def test_demo_prints_its_counts_as_json_after_the_last_export() -> None:
    """`tradetel demo --ticks 20 --counts` stops after 20 ticks and prints the counts as the last line, in JSON."""
    result = subprocess.run(
        [sys.executable, "-m", "tradetel", "demo", "--exporters", "none", "--ticks", "20", "--counts", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.splitlines()[-1])
    assert counts["ticks"] == 20
    assert counts["symbols"] == len(_demo.SYMBOLS)
    assert counts["last_record"] > 0


def test_negative_ticks_is_a_configuration_error() -> None:
    """--ticks -1 exits with status 2 and one line naming --ticks and the accepted values."""
    result = subprocess.run(
        [sys.executable, "-m", "tradetel", "demo", "--ticks", "-1"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "--ticks=-1 is invalid: expected a whole number" in result.stderr
