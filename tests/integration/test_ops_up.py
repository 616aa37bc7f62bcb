"""`tradetel ops up` runs the demo and a real Prometheus with the generated rules, and Ctrl-C stops both."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_ops_up_serves_rules_and_stops_cleanly_on_ctrl_c(
    wait_until: Callable[..., Any], free_ports: Callable[[], int]
) -> None:
    """The rules are loaded, Prometheus scrapes the demo, and SIGINT to the terminal's group ends both, exit 0.

    The command starts with SIGINT ignored, as a background job of a non-interactive shell does (and
    Python then keeps ignoring it): Ctrl-C must stop it all the same.
    """
    port = free_ports()
    command = [sys.executable, "-m", "tradetel", "ops", "up", "--port", "0", "--prometheus-port", str(port)]
    process = subprocess.Popen(
        ["bash", "-c", 'trap "" INT; exec "$@"', "ops-up", *command, "--speed", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a foreground job
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        while not any("Ctrl-C to stop" in line for line in lines):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        output = "".join(lines)
        assert f"Prometheus at http://127.0.0.1:{port}" in output
        assert "Fill ratio: sum(increase(trading_orders_filled_total[1m]))" in output

        def api(path: str) -> Any:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=5) as response:
                return json.load(response)["data"]

        groups = wait_until(lambda: api("rules")["groups"], "the rules to load", 30)
        assert {group["name"] for group in groups} >= {"tradetel-trading", "tradetel-slo"}
        wait_until(
            lambda: any(
                result["value"][1] == "1" for result in api("query?query=up%7Bjob%3D%22tradetel-demo%22%7D")["result"]
            ),
            "a successful scrape of the demo",
            30,
        )
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(20) == 0
        rest = process.stdout.read()
        assert "tradetel ops up: stopping" in rest
        deadline = time.monotonic() + 10
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _listening(port), "Prometheus still listens after tradetel ops up stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
