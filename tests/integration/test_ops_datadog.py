"""The DataDog dashboard and monitors name only metrics and tags the DogStatsD exporter really sends."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pytest

import tradetel
from tradetel._demo import DemoBot
from tradetel.ops import DATADOG_DASHBOARD, DATADOG_MONITORS
from tradetel.ops._datadog import datadog_metrics

pytestmark = pytest.mark.integration

OPS = Path(__file__).resolve().parents[2] / "ops"


def _received(agent: socket.socket) -> dict[str, set[str]]:
    """Metric name -> tag keys, from every datagram waiting on ``agent``."""
    seen: dict[str, set[str]] = {}
    agent.setblocking(False)
    while True:
        try:
            datagram = agent.recv(65_536).decode()
        except BlockingIOError:
            return seen
        for line in datagram.splitlines():
            name = line.split(":", 1)[0]
            tags = next((field[1:] for field in line.split("|") if field.startswith("#")), "")
            seen.setdefault(name, set()).update(tag.split(":", 1)[0] for tag in tags.split(",") if tag)


def test_every_metric_and_grouping_tag_is_in_the_demos_dogstatsd_output() -> None:
    """The demo (with the faults and platform metrics it lacks) emits every name and `by {tag}` the JSON uses."""
    agent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    agent.bind(("127.0.0.1", 0))
    agent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: OTLP pushes are refused and counted as failures
    try:
        tel = tradetel.configure(
            env={"DD_ENV": "paper"},
            exporters="dogstatsd,otlp",
            otlp_protocol="http/protobuf",
            otlp_endpoint=f"http://127.0.0.1:{refused.getsockname()[1]}/v1/metrics",
            dogstatsd_url=f"udp://127.0.0.1:{agent.getsockname()[1]}",
            export_interval=3600,
            export_timeout=1,
        )
        with tel:
            bot = DemoBot(tel, seed=3)  # its default error rate trips breakers and rejects orders
            for tick in range(400):
                bot.tick(time.monotonic() + tick * 0.05)
            tel.platform.bots.set(2, status="running")
            tel.storage.errors.add(1, system="redis", error_type="connection")
            tel.orders.slippage.record(float("nan"), exchange="binance", symbol="BTC-USD", side="buy")
            tel.account.exposure.set(0.05, account="demo", kind="pending")
            tel.force_flush()  # OTLP fails now: the failure is counted
            tel.force_flush()  # and sent to DogStatsD with this export
        seen = _received(agent)
    finally:
        agent.close()
        refused.close()
    dashboard = json.loads((OPS / DATADOG_DASHBOARD).read_text())
    monitors = json.loads((OPS / DATADOG_MONITORS).read_text())
    names = datadog_metrics(dashboard, monitors)
    assert len(names) >= 18
    assert sorted(names - set(seen)) == []
    queries = [q["query"] for w in dashboard["widgets"] for r in w["definition"]["requests"] for q in r["queries"]]
    queries += [monitor["query"] for monitor in monitors]
    for query in queries:
        for name, keys in re.findall(r"([a-z_]+(?:\.[a-z0-9_]+)+)\{[^}]*\} by \{([^}]*)\}", query):
            assert set(keys.split(",")) <= seen[name], (query, seen[name])
