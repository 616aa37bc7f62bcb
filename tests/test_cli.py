"""The tradetel command: catalog output, version, the demo and its configuration errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import tradetel
from tradetel.cli import main


def test_catalog_json_lists_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    """`tradetel catalog --format json` gives name, kind, unit, description, keys, buckets and Prometheus name."""
    assert main(["catalog", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in data["instruments"]}
    assert len(rows) == len(tradetel.DEFAULT_CATALOG)
    latency = rows["trading.orders.latency"]
    assert latency["kind"] == "histogram" and latency["unit"] == "s"
    assert latency["prometheus_name"] == "trading_orders_latency_seconds"
    assert latency["buckets"][0] < 0.01 and "exchange" in latency["attributes"]
    assert rows["trading.orders.filled"]["prometheus_name"] == "trading_orders_filled_total"
    # every catalog domain; test_reference_coverage pins the catalog to DESIGN.md's domains
    assert {row["domain"] for row in rows.values()} == set(tradetel.DEFAULT_CATALOG.domains())
    for row in rows.values():
        assert row["description"] and row["kind"] in ("counter", "up_down_counter", "gauge", "histogram")
        assert (row["buckets"] is not None) == (row["kind"] == "histogram")


def test_catalog_table_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    """The table and markdown formats list every instrument, and --namespace renames them."""
    assert main(["catalog"]) == 0
    table = capsys.readouterr().out
    assert "trading.orders.filled" in table and table.count("\n") == len(tradetel.DEFAULT_CATALOG) + 1
    assert main(["catalog", "--format", "markdown", "--namespace", "acme"]) == 0
    assert "`acme.orders.filled`" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`tradetel --version` prints the package version."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tradetel {tradetel.__version__}"


def _run_demo(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tradetel", "demo", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


def test_bad_env_var_exits_with_one_clear_line() -> None:
    """A bad OTEL_EXPORTER_PROMETHEUS_PORT makes the demo exit non-zero with one line naming the variable."""
    result = _run_demo(["--duration", "1"], env={"OTEL_EXPORTER_PROMETHEUS_PORT": "abc"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "OTEL_EXPORTER_PROMETHEUS_PORT='abc'" in lines[0] and "0 to 65535" in lines[0]


def _scrape(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _value(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_demo_serves_scrapable_metrics(free_port: int, promtool: str) -> None:
    """The demo serves /metrics with non-zero order, fill, latency, slippage and R-multiple series, promtool-clean."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tradetel", "demo", "--duration", "30", "--seed", "7", "--port", str(free_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 25
        text = _scrape(f"http://127.0.0.1:{free_port}/metrics", deadline)
        while _value(text, "trading_trades_r_multiple_count") == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            text = _scrape(f"http://127.0.0.1:{free_port}/metrics", deadline)
        for prefix in (
            "trading_orders_submitted_total",
            "trading_orders_filled_total",
            "trading_orders_latency_seconds_count",
            "trading_orders_slippage_basis_points_count",
            "trading_trades_r_multiple_count",
            "trading_market_data_updates_total",
        ):
            assert _value(text, prefix) > 0, prefix
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0 and check.stdout == "" and check.stderr == "", check.stdout + check.stderr
    finally:
        process.terminate()
        out, err = process.communicate(timeout=15)
    assert "serving Prometheus metrics at" in out, out + err
