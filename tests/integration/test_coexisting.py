"""A bot with metrics of its own: prometheus_client, prometheus-fastapi-instrumentator, OpenTelemetry instrumentation.

The bot runs as its own process (uvicorn on 127.0.0.1); requests and scrapes are real HTTP.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
Sample = tuple[str, tuple[tuple[str, str], ...], float]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _families(text: str) -> dict[str, set[Sample]]:
    """Family name → samples, failing on a family that appears twice."""
    out: dict[str, set[Sample]] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in out, f"family {family.name} served twice"
        out[family.name] = {(s.name, tuple(sorted(s.labels.items())), s.value) for s in family.samples}
    return out


def _total(samples: set[Sample], name: str, **labels: str) -> float:
    return sum(value for sample, found, value in samples if sample == name and set(labels.items()) <= set(found))


@pytest.fixture
def bot(
    processes: Callable[..., Any], free_ports: Callable[[], int], wait_until: Callable[..., Any], tmp_path: Path
) -> tuple[str, str]:
    """The FastAPI bot, emitting the old and the new HTTP semantic conventions; (app URL, tradetel URL)."""
    app_port, tradetel_port = free_ports(), free_ports()
    env = {"OTEL_SEMCONV_STABILITY_OPT_IN": "http/dup", "OTEL_METRICS_EXPORTER": "", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, str(HERE / "fastapi_bot.py"), str(app_port), str(tradetel_port)]
    process = processes("fastapi-bot", argv, tmp_path / "bot.log", env=env)
    wait_until(lambda: _listening(app_port) and _listening(tradetel_port), "the bot to listen", 60, alive=process)
    return f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{tradetel_port}/metrics"


REQUESTS = 7


def test_fastapi_bot_serves_everything_on_both_endpoints(bot: tuple[str, str]) -> None:
    """After N requests both endpoints show N everywhere: tradetel's, the instrumentator's and OpenTelemetry's series.

    The bot's /metrics (prometheus_client) shows tradetel's families with the values tradetel's own
    endpoint serves; tradetel's endpoint shows the bot's prometheus_client counters; the OpenTelemetry
    FastAPI instrumentation's http.server.duration and http.server.request.duration reach tradetel's
    pipeline through the global MeterProvider. No family appears twice on either.
    """
    app_url, tradetel_url = bot
    with httpx.Client(timeout=10) as client:
        for _ in range(REQUESTS):
            assert client.post(f"{app_url}/signal").json() == {"accepted": True}
        bots_view = _families(client.get(f"{app_url}/metrics").text)
        tradetels_view = _families(client.get(tradetel_url).text)

    for families in (bots_view, tradetels_view):
        assert _total(families["trading_orders_filled"], "trading_orders_filled_total") == REQUESTS
        assert _total(families["trading_orders_latency_seconds"], "trading_orders_latency_seconds_count") == REQUESTS
        new = families["http_server_request_duration_seconds"]
        assert _total(new, "http_server_request_duration_seconds_count", http_route="/signal") == REQUESTS
        old = families["http_server_duration_milliseconds"]
        assert _total(old, "http_server_duration_milliseconds_count", http_target="/signal") == REQUESTS
        assert _total(families["bot_signals"], "bot_signals_total", source="tradingview") == REQUESTS
        assert _total(families["http_requests"], "http_requests_total", handler="/signal") == REQUESTS

    catalog = [name for name in tradetels_view if name.startswith(("trading_", "tradetel_"))]
    assert "trading_orders_filled" in catalog
    for name in catalog:
        assert bots_view[name] == tradetels_view[name], name


def test_prometheus_scrapes_both_endpoints_of_the_bot(
    bot: tuple[str, str], prometheus_server: Callable[..., Any]
) -> None:
    """A real Prometheus scraping the bot's /metrics and tradetel's endpoint answers the same exact totals from both."""
    app_url, tradetel_url = bot
    with httpx.Client(timeout=10) as client:
        for _ in range(REQUESTS):
            client.post(f"{app_url}/signal")
    prom = prometheus_server({"bot": f"{app_url}/metrics", "tradetel": tradetel_url})
    for job in ("bot", "tradetel"):
        prom.wait_for_scrape(job)
        prom.wait_for_value(f'sum(trading_orders_filled_total{{job="{job}"}})', REQUESTS)
        prom.wait_for_value(f'sum(bot_signals_total{{job="{job}"}})', REQUESTS)
        route = f'job="{job}",http_route="/signal"'
        prom.wait_for_value(f"sum(http_server_request_duration_seconds_count{{{route}}})", REQUESTS)
        prom.wait_for_value(f'sum(http_requests_total{{job="{job}",handler="/signal"}})', REQUESTS)
    # one target_info per target: tradetel's resource, whichever endpoint carried it
    services = {labels["job"]: labels["service_name"] for labels in prom.labels("target_info")}
    assert services == {"bot": "fastapi-bot", "tradetel": "fastapi-bot"}


def _instrumented(script: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run ``script`` under opentelemetry-instrument, as `opentelemetry-instrument python -c ...` would."""
    command = Path(sys.executable).parent / "opentelemetry-instrument"
    assert command.exists(), "opentelemetry-instrument comes with the dev group (opentelemetry-distro)"
    base = {"OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1"}
    return subprocess.run(
        [str(command), sys.executable, "-c", script],
        env={**_environ(), **base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRADETEL_"))}


COLLIDE = """
import tradetel
try:
    tradetel.configure()
except tradetel.ConfigurationError as error:
    print(error)
else:
    print("no error")
"""


def test_opentelemetry_instrument_on_the_same_port_names_the_cause(free_ports: Callable[[], int]) -> None:
    """Under opentelemetry-instrument with the Prometheus exporter, configure() says the SDK holds the port."""
    port = free_ports()
    result = _instrumented(COLLIDE, {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": str(port)})
    assert result.returncode == 0, result.stderr
    message = result.stdout
    assert f"127.0.0.1:{port}" in message
    assert "this process runs opentelemetry-exporter-prometheus with OTEL_METRICS_EXPORTER=prometheus" in message
    assert "OTEL_METRICS_EXPORTER=none" in message and "TradetelCollector" in message


ONE_PORT = """
import os, urllib.request
from prometheus_client import REGISTRY
from opentelemetry import metrics
import tradetel
from tradetel.exporters.prometheus_client import TradetelCollector

tel = tradetel.configure(exporters="none")
REGISTRY.register(TradetelCollector(tel, target_info=False))
tel.orders.filled.add(4, exchange="binance", symbol="BTC-USD", side="buy")
metrics.get_meter("sdk.side").create_counter("jobs.done").add(2)
url = "http://127.0.0.1:" + os.environ["OTEL_EXPORTER_PROMETHEUS_PORT"] + "/metrics"
print(urllib.request.urlopen(url, timeout=10).read().decode())
tel.shutdown()
"""


def test_one_port_the_sdks_server_serves_tradetel_too(free_ports: Callable[[], int]) -> None:
    """The documented fix: the SDK's own Prometheus server serves tradetel's collector, each family once."""
    env = {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": str(free_ports())}
    result = _instrumented(ONE_PORT, env)
    assert result.returncode == 0, result.stderr
    families = _families(result.stdout)
    assert _total(families["trading_orders_filled"], "trading_orders_filled_total", exchange="binance") == 4
    assert _total(families["jobs_done"], "jobs_done_total") == 2
    assert len([name for name in families if name == "target_info"]) == 1


SDK_OFF = """
import urllib.request
from opentelemetry import metrics
import tradetel

tel = tradetel.configure(exporters="prometheus")
tel.orders.filled.add(5, exchange="binance", symbol="BTC-USD", side="buy")
print(type(metrics.get_meter_provider()).__name__)
print(urllib.request.urlopen(tel.prometheus_url, timeout=10).read().decode())
tel.shutdown()
"""


def test_opentelemetry_instrument_without_its_metrics_leaves_the_port_to_tradetel(
    free_ports: Callable[[], int],
) -> None:
    """The other documented fix: OTEL_METRICS_EXPORTER=none for the SDK, exporters='prometheus' for tradetel."""
    env = {"OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_PROMETHEUS_PORT": str(free_ports())}
    result = _instrumented(SDK_OFF, env)
    assert result.returncode == 0, result.stderr
    provider, _, exposition = result.stdout.partition("\n")
    assert provider == "MeterProvider"  # opentelemetry-instrument set the SDK's, with no reader
    assert _total(_families(exposition)["trading_orders_filled"], "trading_orders_filled_total") == 5
