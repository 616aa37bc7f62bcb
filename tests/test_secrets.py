"""Planted secrets (DataDog API key, OTLP headers, the /metrics password, a hash key) never leave the process.

The test sets unique secret values wherever a user would put them, runs every backend against closed local
ports (so exports fail and get logged), provokes configuration errors with secrets in the bad values, and
then searches everything a secret could leak into: every log record at DEBUG (with tracebacks), stdout
and stderr, the reprs of the settings, the Telemetry and the exporters, the error messages, the Prometheus
exposition, the DogStatsD lines and the collected metrics.
"""

from __future__ import annotations

import base64
import logging
import socket
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tradetel
from tradetel import ConfigurationError
from tradetel.config import load_settings
from tradetel.exporters.dogstatsd import DogStatsdExporter, DogStatsdSerializer
from tradetel.exporters.otlp import OtlpExporter
from tradetel.exporters.prometheus import render

TOKEN = uuid.uuid4().hex[:12]
DD_API_KEY = f"dd-api-key-{TOKEN}"
OTLP_TOKEN = f"otlp-bearer-{TOKEN}"
PASSWORD = f"basic-password-{TOKEN}"
HASH_KEY = f"hash-key-{TOKEN}"
SECRETS = (DD_API_KEY, OTLP_TOKEN, PASSWORD, HASH_KEY)


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (TCP and UDP)."""
    with socket.socket() as tcp:
        tcp.bind(("127.0.0.1", 0))
        return int(tcp.getsockname()[1])


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a bot with every secret set; also in os.environ, for anything that reads it directly."""
    closed = _closed_port()
    env = {
        "DD_API_KEY": DD_API_KEY,
        "DD_DOGSTATSD_URL": f"udp://127.0.0.1:{closed}",
        "DD_ENV": "paper",
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{OTLP_TOKEN},x-api-key={DD_API_KEY}",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{closed}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
        "OTEL_METRIC_EXPORT_TIMEOUT": "1000",
        "TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME": "prometheus",
        "TRADETEL_PROMETHEUS_BASIC_AUTH_PASSWORD": PASSWORD,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def everything(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Texts to search; at the end, every log record (message and traceback) at DEBUG is added."""
    caplog.set_level(logging.DEBUG)  # the root logger: tradetel, the OpenTelemetry SDK, grpc, urllib3, datadog
    texts: list[str] = []
    yield texts
    texts.append(caplog.text)
    texts.extend(record.getMessage() for record in caplog.records)


def _find(texts: list[str]) -> list[tuple[str, str]]:
    return [(secret, text[:200]) for text in texts for secret in SECRETS if secret in text]


def _error_texts(error: BaseException) -> list[str]:
    return [str(error), repr(error), "".join(traceback.format_exception(error)), repr(vars(error))]


def _scrape(url: str) -> bytes:
    request = urllib.request.Request(url)
    request.add_header("Authorization", "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_planted_secrets_appear_nowhere(
    protocol: str, secret_env: dict[str, str], everything: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every backend runs, exports fail, errors are raised: no secret shows up in any text the process produced."""
    env = {**secret_env, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": protocol}
    instruments = {
        "security.rate_limited": {"attributes": {"client": {"policy": "client_address", "hash_key": HASH_KEY}}}
    }
    tel = tradetel.configure(
        exporters="prometheus,otlp,dogstatsd,console",
        prometheus_port=0,
        export_interval=3600,
        env=env,
        instruments=instruments,
    )
    try:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        tel.security.rate_limited.add(1, client="203.0.113.7", route="/webhook")
        tel.orders.filled.add(float("nan"))  # a drop, logged
        tel.force_flush()  # OTLP and DogStatsD fail against closed ports, and are logged
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(tel.prometheus_url or "", timeout=10)  # 401 without the password
        assert tel.prometheus_url is not None
        exposition = _scrape(tel.prometheus_url)
        assert b"trading_orders_filled_total" in exposition
        data = tel.collect()
        everything.extend([exposition.decode(), render(data).decode(), repr(data.to_json())])
        everything.extend(DogStatsdSerializer(unified={"env": "paper"}).lines(data))
        everything.extend([repr(tel), str(tel), repr(tel.settings), str(tel.settings), repr(tel.settings.dogstatsd)])
        everything.extend([repr(tel.settings.otlp), repr(tel.settings.prometheus), repr(tel.settings.otlp.headers)])
        everything.extend([repr(tel.settings.otlp.headers.items()), repr(tel.resource.attributes)])
        everything.extend([repr(OtlpExporter(tel.settings.otlp)), repr(DogStatsdExporter(tel.settings.dogstatsd))])
        everything.extend(repr(server) for server in tel._servers)
        everything.extend([repr(tel.health), repr(tel.catalog), repr(tel.instruments())])
    finally:
        tel.shutdown(timeout=5)
    everything.extend(_configuration_errors(env))
    captured = capsys.readouterr()
    everything.extend([captured.out, captured.err])
    assert "Bearer" in repr(env) and _find([repr(env)]), "the search must be able to find a planted secret"
    assert _find(everything) == []


def _configuration_errors(env: dict[str, str]) -> list[str]:
    """Bad values that contain secrets: every resulting ConfigurationError, as text."""
    texts: list[str] = []
    bad: list[dict[str, Any]] = [
        {"env": {**env, "OTEL_EXPORTER_OTLP_HEADERS": f"authorization Bearer {OTLP_TOKEN}"}},  # no '='
        {"env": {**env, "OTEL_EXPORTER_OTLP_METRICS_HEADERS": f"={OTLP_TOKEN}"}},  # no key
        {"prometheus_basic_auth_pasword": PASSWORD},  # a misspelt argument carries the password
        {"env": {"TRADETEL_PROMETHEUS_BASIC_AUTH_PASSWORD": PASSWORD}},  # a password without a user
        {
            "instruments": {
                "security.rate_limited": {"attributes": {"client": {"policy": "nope", "hash_key": HASH_KEY}}}
            }
        },
        {
            "instruments": {
                "security.rate_limited": {
                    "attributes": {"client": {"policy": "client_address", "hash_key": HASH_KEY, "ipv4_prefix": 99}}
                }
            }
        },
    ]
    for arguments in bad:
        arguments.setdefault("env", {})
        with pytest.raises(ConfigurationError) as raised:
            tradetel.configure(exporters="none", **arguments)
        texts.extend(_error_texts(raised.value))
    return texts


def test_a_misspelt_secret_in_a_config_file_is_not_echoed(tmp_path: Path) -> None:
    """An unknown key in a config file is named in the error, its value (perhaps a password) is not."""
    config = tmp_path / "bot.toml"
    config.write_text(f'[prometheus]\nbasic_auth_pasword = "{PASSWORD}"\n')
    with pytest.raises(ConfigurationError) as raised:
        load_settings({}, env={}, config_file=config)
    texts = _error_texts(raised.value)
    assert "basic_auth_pasword" in texts[0]
    assert _find(texts) == []
