"""`tradetel check` as a command against real listeners: the Collector, a DogStatsD socket, taken and refused ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tradetel

pytestmark = pytest.mark.integration

SECRET = "Bearer s3cr3t-token"


def pick_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check(env: dict[str, str]) -> tuple[int, dict[str, str], str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DD_", "TRADETEL_"))}
    result = subprocess.run(
        [sys.executable, "-m", "tradetel", "check"],
        capture_output=True,
        text=True,
        env={**clean, "OTEL_EXPORTER_OTLP_HEADERS": f"authorization={SECRET}", **env},
        timeout=120,
    )
    assert SECRET not in result.stdout + result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if not line.startswith("tradetel check:")}
    return result.returncode, lines, result.stdout + result.stderr


@pytest.fixture
def dogstatsd_socket() -> Iterator[str]:
    """A bound Unix datagram socket standing where a DataDog Agent's would."""
    directory = tempfile.mkdtemp(prefix="dsd")
    path = os.path.join(directory, "dsd.socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield path
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(directory)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_every_check_passes_against_real_listeners(
    protocol: str,
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    dogstatsd_socket: str,
) -> None:
    """A free Prometheus port, a running Collector (an empty export accepted) and a DogStatsD socket: all ok, exit 0."""
    env = collector_env()
    otel = collector("gateway.yaml", env, wait_ports=[int(env["OTLP_GRPC_PORT"]), int(env["OTLP_HTTP_PORT"])])
    endpoint = otel.otlp_endpoint(protocol)
    status, lines, output = _check(
        {
            "OTEL_METRICS_EXPORTER": "prometheus,otlp,dogstatsd",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(pick_free_port()),
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "DD_DOGSTATSD_URL": f"unixgram://{dogstatsd_socket}",
        }
    )
    assert status == 0, output
    assert list(lines) == ["settings", "catalog", "prometheus", "otlp", "dogstatsd"], output
    assert all(line.startswith("ok ") for line in lines.values()), output
    assert "an empty export was accepted" in lines["otlp"]
    assert "accepts a datagram connection" in lines["dogstatsd"]


def test_taken_port_refused_collector_and_closed_statsd_port_fail() -> None:
    """Our own endpoint on the port, nothing on the OTLP and DogStatsD ports: three FAIL lines naming why, exit 1."""
    otlp_port, statsd_port = pick_free_port(), pick_free_port()
    with tradetel.configure(service_name="holder-bot", prometheus_port=0, env={}) as holder:
        assert holder.prometheus_url is not None
        port = int(holder.prometheus_url.rsplit(":", 1)[1].split("/")[0])
        status, lines, output = _check(
            {
                "OTEL_METRICS_EXPORTER": "prometheus,otlp,dogstatsd",
                "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
                "DD_DOGSTATSD_URL": f"udp://127.0.0.1:{statsd_port}",
            }
        )
    assert status == 1, output
    assert lines["settings"].startswith("ok") and lines["catalog"].startswith("ok")
    prometheus = lines["prometheus"]
    assert prometheus.startswith("FAIL") and f"127.0.0.1:{port} is already in use" in prometheus
    assert "a tradetel endpoint (service.name=holder-bot)" in prometheus
    assert f"pid {os.getpid()} " in prometheus
    assert lines["otlp"].startswith("FAIL") and "refused" in lines["otlp"]
    assert lines["dogstatsd"].startswith("FAIL") and "port unreachable" in lines["dogstatsd"]
    assert output.splitlines()[-1] == "tradetel check: 3 failed, 0 warnings"


def test_a_port_held_by_another_program_is_named(tmp_path: Path) -> None:
    """A port taken by a process that is not tradetel: the check names its pid and command line."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
            "print(s.getsockname()[1], flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with holder:
        assert holder.stdout is not None and holder.stdin is not None
        port = int(holder.stdout.readline())
        status, lines, output = _check({"OTEL_EXPORTER_PROMETHEUS_PORT": str(port)})
        holder.stdin.write("\n")
        holder.stdin.flush()
    assert status == 1, output
    assert lines["prometheus"].startswith("FAIL") and f"pid {holder.pid} ({sys.executable} -c import" in output


def test_an_export_the_endpoint_rejects_fails_after_connecting(
    collector: Callable[..., Any], collector_env: Callable[..., dict[str, str]]
) -> None:
    """The Collector answers 404 on a wrong path: connected, but the empty export failed, with the exporter's reason."""
    env = collector_env()
    otel = collector("gateway.yaml", env, wait_ports=[int(env["OTLP_HTTP_PORT"])])
    status, lines, output = _check(
        {
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{otel.address('OTLP_HTTP_PORT')}/v1/nothing",
        }
    )
    assert status == 1, output
    assert lines["otlp"].startswith("FAIL") and "connected, but an empty export failed" in lines["otlp"]
    assert "404" in lines["otlp"]


def test_the_empty_export_carries_the_configured_headers(capture_server: Any) -> None:
    """Over HTTP the check POSTs an empty protobuf request with the configured headers, as the exporter would."""
    status, lines, output = _check(
        {
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": capture_server.url,
        }
    )
    assert status == 0 and "an empty export was accepted" in lines["otlp"], output
    (request,) = [r for r in capture_server.requests if r.path == "/v1/metrics"]
    headers = {key.lower(): value for key, value in request.headers.items()}
    assert request.method == "POST" and request.body == b""
    assert headers["authorization"] == SECRET and headers["content-type"] == "application/x-protobuf"
