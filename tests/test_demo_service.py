"""`tradetel demo` names its service after DD_SERVICE / OTEL_SERVICE_NAME when they are set, on every backend."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest


def _target_info(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
            (line,) = [line for line in text.splitlines() if line.startswith("target_info{")]
            return line
        except (urllib.error.URLError, ConnectionError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize(
    ("variables", "service"),
    [
        ({"DD_SERVICE": "grid-bot"}, "grid-bot"),
        ({"OTEL_SERVICE_NAME": "otel-bot"}, "otel-bot"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=attr-bot"}, "attr-bot"),
        ({}, "tradetel-demo"),
    ],
)
def test_demo_keeps_the_configured_service_name(free_port: int, variables: dict[str, str], service: str) -> None:
    """The demo's resource (Prometheus target_info) and DogStatsD service tag use the configured name, else its own."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(30)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DD_SERVICE", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES")
        }
        env.update(variables, DD_DOGSTATSD_URL=f"udp://127.0.0.1:{receiver.getsockname()[1]}")
        env.update(OTEL_METRIC_EXPORT_INTERVAL="200")
        command = [sys.executable, "-m", "tradetel", "demo", "--duration", "60", "--quiet", "--seed", "3"]
        command += ["--exporters", "prometheus,dogstatsd", "--port", str(free_port)]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            info = _target_info(f"http://127.0.0.1:{free_port}/metrics", time.monotonic() + 30)
            datagram = receiver.recv(65_536).decode()
        finally:
            process.terminate()
            _, err = process.communicate(timeout=15)
    assert f'service_name="{service}"' in info, info + err
    assert f"service:{service}" in datagram.split("\n")[0], datagram
