"""`tradetel config` and `tradetel check`, run as commands: values, sources, redaction, configuration errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tradetel.config import load_settings

SECRETS = ("Bearer s3cr3t-token", "hunter2-password", "url-pa55word", "hash-k3y-secret")


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DD_", "TRADETEL_"))}
    return subprocess.run(
        [sys.executable, "-m", "tradetel", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=cwd,
        timeout=60,
    )


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tradetel.toml"
    path.write_text(
        'namespace = "acme"\n'
        "[prometheus]\nport = 9200\n"
        '[instruments."orders.filled".attributes.exchange]\n'
        'policy = "hash"\nhash_key = "hash-k3y-secret"\n'
    )
    return path


def _environment(config: Path) -> dict[str, str]:
    return {
        "TRADETEL_CONFIG_FILE": str(config),
        "OTEL_SERVICE_NAME": "env-bot",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer s3cr3t-token,x-tenant=desk-7",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://bot:url-pa55word@collector.example:4318/v1/metrics",
        "TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME": "prometheus",
        "TRADETEL_PROMETHEUS_BASIC_AUTH_PASSWORD": "hunter2-password",
        "DD_AGENT_HOST": "127.0.0.1",
    }


def _rows(stdout: str) -> dict[str, dict[str, Any]]:
    return {row["setting"]: row for row in json.loads(stdout)["settings"]}


def test_config_json_gives_each_value_and_its_source(tmp_path: Path) -> None:
    """Argument, variable, file key and default are each named as the source, with the value load_settings gives."""
    config = _config_file(tmp_path)
    env = _environment(config)
    result = _run("config", "--format", "json", "--set", "strict=true", env=env)
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    expected = load_settings({"strict": "true"}, env=env)

    assert rows["strict"] == {**rows["strict"], "value": True, "source": "argument", "origin": "strict"}
    assert rows["service_name"]["value"] == expected.service_name == "env-bot"
    assert (rows["service_name"]["source"], rows["service_name"]["origin"]) == ("env", "OTEL_SERVICE_NAME")
    assert rows["prometheus.port"]["value"] == expected.prometheus.port == 9200
    port = rows["prometheus.port"]
    assert (port["source"], port["file"], port["origin"]) == ("file", str(config), "prometheus.port")
    assert rows["namespace"]["source"] == "file" and rows["namespace"]["value"] == "acme"
    assert rows["export_interval"] == {**rows["export_interval"], "value": 10.0, "source": "default", "origin": None}
    assert rows["exporters"]["value"] == ["prometheus"]
    assert rows["dogstatsd.url"]["value"] == expected.dogstatsd.url == "udp://127.0.0.1:8125"
    assert rows["dogstatsd.url"]["origin"] == "DD_AGENT_HOST/DD_DOGSTATSD_PORT"
    assert rows["otlp.headers"]["value"] == {"authorization": "<redacted>", "x-tenant": "<redacted>"}
    assert rows["otlp.endpoint"]["value"] == "https://bot:<redacted>@collector.example:4318/v1/metrics"
    assert rows["prometheus.basic_auth_password"]["value"] == "<redacted>"
    assert rows["instruments"]["source"] == "file"
    policy = rows["instruments"]["value"]["orders.filled"]["attributes"]["exchange"]
    assert policy == {"policy": "hash", "hash_key": "<redacted>"}
    assert json.loads(result.stdout)["config_file"] == str(config)
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_config_table_lists_every_setting_without_secrets(tmp_path: Path) -> None:
    """The table has one line per setting plus instruments, each with a source, and shows no secret."""
    from tradetel.config import SETTINGS

    env = _environment(_config_file(tmp_path))
    env["OTEL_EXPORTER_PROMETHEUS_PORT"] = "9300"  # the variable wins over the file
    result = _run("config", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["setting", "value", "source"]
    table = {line.split()[0]: line for line in lines[1:]}
    assert list(table) == [s.path for s in SETTINGS] + ["instruments"]
    assert table["prometheus.port"].split()[1:] == ["9300", "env", "OTEL_EXPORTER_PROMETHEUS_PORT"]
    assert table["strict"].split()[1:] == ["false", "default"]
    assert table["namespace"].split()[-2:] == [f"{tmp_path / 'tradetel.toml'}:", "namespace"]
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_config_error_is_one_line_naming_the_variable() -> None:
    """A bad variable makes `config` exit 2 and `check` print a FAIL line and exit 1, both naming it."""
    env = {"OTEL_EXPORTER_PROMETHEUS_PORT": "abc", "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer s3cr3t-token"}
    config = _run("config", env=env)
    assert config.returncode == 2 and config.stdout == ""
    (line,) = config.stderr.strip().splitlines()
    assert "OTEL_EXPORTER_PROMETHEUS_PORT='abc'" in line and "0 to 65535" in line
    check = _run("check", env=env)
    assert check.returncode == 1
    (line,) = check.stdout.strip().splitlines()
    assert line.startswith("FAIL  settings") and "OTEL_EXPORTER_PROMETHEUS_PORT='abc'" in line
    assert "s3cr3t" not in check.stdout + check.stderr


def test_bad_set_argument_is_refused() -> None:
    """`--set` without `=`, or with an unknown setting, is a configuration error naming the accepted forms."""
    result = _run("config", "--set", "prometheus.port")
    assert result.returncode == 2 and "SETTING=VALUE" in result.stderr
    result = _run("config", "--set", "prometheus.prot=1")
    assert result.returncode == 2 and "prometheus.prot" in result.stderr and "prometheus_port" in result.stderr


def test_check_fails_on_a_bad_catalog_override(tmp_path: Path) -> None:
    """An override of an instrument that does not exist fails the catalog check, naming it."""
    config = tmp_path / "bad.yaml"
    config.write_text("exporters: none\ninstruments:\n  orders.filed:\n    cardinality_limit: 10\n")
    result = _run("check", "--config-file", str(config))
    assert result.returncode == 1
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if not line.startswith("tradetel")}
    assert lines["settings"].startswith("ok")
    assert lines["catalog"].startswith("FAIL") and "instruments.orders.filed" in lines["catalog"]
    assert result.stdout.splitlines()[-1] == "tradetel check: 1 failed, 0 warnings"


def test_check_with_no_backends_passes(tmp_path: Path) -> None:
    """With exporters none, check validates settings and catalog only, and exits 0."""
    result = _run("check", "--set", "exporters=none")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [["ok", "settings"], ["ok", "catalog"]]


def test_an_endpoint_open_beyond_this_machine_without_protection_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, free_port: int
) -> None:
    """A non-loopback Prometheus host without TLS or basic auth gives `warn`, which does not fail the check."""
    from tradetel import _inspect

    assert _inspect._loopback("127.0.0.1") and _inspect._loopback("localhost") and not _inspect._loopback("192.0.2.1")
    settings = load_settings({"prometheus_port": free_port}, env={})
    assert _inspect.check_prometheus(settings).status == "ok"
    monkeypatch.setattr(_inspect, "_loopback", lambda host: False)  # as for 0.0.0.0, without opening to the network
    check = _inspect.check_prometheus(settings)
    assert check.status == "warn" and "without TLS or basic auth" in check.detail
    assert _inspect.Check("warn", "prometheus", "x").line() == "warn  prometheus  x"


def test_a_url_built_from_other_variables_names_them() -> None:
    """dogstatsd.url built from DD_DOGSTATSD_SOCKET or DD_AGENT_HOST names those variables as its source."""
    from tradetel._inspect import setting_rows

    def origin(env: dict[str, str]) -> tuple[str, str | None]:
        (row,) = [row for row in setting_rows(load_settings(env=env)) if row.path == "dogstatsd.url"]
        return row.source, row.origin

    assert origin({"DD_DOGSTATSD_SOCKET": "/var/run/dsd.sock"}) == ("env", "DD_DOGSTATSD_SOCKET")
    assert origin({"DD_AGENT_HOST": "agent"}) == ("env", "DD_AGENT_HOST/DD_DOGSTATSD_PORT")
    assert origin({}) == ("default", None)


def test_a_failure_message_quoting_a_secret_is_scrubbed() -> None:
    """Should the OTLP exporter's message quote the URL's password or a header value, the check line does not."""
    from tradetel._inspect import _scrub

    otlp = load_settings(env={"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer s3cr3t-token"}).otlp
    message = _scrub("export to https://bot:url-pa55word@collector:4318/v1/metrics failed: Bearer s3cr3t-token", otlp)
    assert message == "export to https://bot:<redacted>@collector:4318/v1/metrics failed: <redacted>"
