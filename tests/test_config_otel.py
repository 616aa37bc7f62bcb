"""OpenTelemetry settings beyond the differential table: precedence with tradetel's own sources, new settings,
and config files whose parse errors must not echo planted secrets."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from tradetel import ConfigurationError
from tradetel.config import load_settings

SECRET = "s3cr3t-7f1c"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("password", f"prometheus:\n  basic_auth_username: bot\n  basic_auth_password: *{SECRET}\n"),
        ("header", f"otlp:\n  headers:\n    authorization: !Bearer-{SECRET}\n"),
        (
            "hash_key",
            "instruments:\n  security.rate_limited:\n    attributes:\n      client:\n"
            f"        policy: client_address\n        hash_key: *{SECRET}\n",
        ),
        ("at sign", f"otlp:\n  headers:\n    x-api-key: @{SECRET}\n"),
        ("percent", f"prometheus:\n  basic_auth_password: %{SECRET}\n"),
        ("unterminated quote", f'otlp:\n  headers:\n    x-api-key: "{SECRET}\n'),
    ],
    ids=lambda value: "yaml" if "\n" in value else value.replace(" ", "-"),
)
def test_yaml_parse_error_does_not_echo_the_file(name: str, text: str, tmp_path: Path) -> None:
    """A YAML file the parser rejects raises ConfigurationError with file, line and column, and no file text."""
    config = tmp_path / "bot.yaml"
    config.write_text(text)
    with pytest.raises(ConfigurationError) as raised:
        load_settings(env={}, config_file=config)
    error = raised.value
    texts = [str(error), repr(error), "".join(traceback.format_exception(error)), repr(vars(error))]
    assert not [t for t in texts if SECRET in t], name
    assert str(config) in str(error)
    assert "line " in str(error) and "column " in str(error)


def test_yaml_hint_names_the_cure(tmp_path: Path) -> None:
    """An unquoted value starting with * is reported at its line and column with the advice to quote it."""
    config = tmp_path / "bot.yaml"
    config.write_text(f"service_name: grid\nprometheus:\n  basic_auth_password: *{SECRET}\n")
    with pytest.raises(ConfigurationError, match=r"line 3, column 24: found undefined alias .*must be quoted"):
        load_settings(env={}, config_file=config)


def test_quoted_yaml_secret_is_read(tmp_path: Path) -> None:
    """The same secret, quoted, is read as the password (so the error above is about quoting only)."""
    config = tmp_path / "bot.yaml"
    config.write_text(f"prometheus:\n  basic_auth_username: bot\n  basic_auth_password: '*{SECRET}'\n")
    settings = load_settings(env={}, config_file=config)
    assert settings.prometheus.basic_auth_password is not None
    assert settings.prometheus.basic_auth_password.reveal() == "*" + SECRET


@pytest.mark.parametrize(
    ("arguments", "env", "file", "expected"),
    [
        ({}, {}, "", "trading-bot"),
        ({}, {"OTEL_RESOURCE_ATTRIBUTES": "service.name=attr"}, "", "attr"),
        ({}, {"OTEL_SERVICE_NAME": "name", "OTEL_RESOURCE_ATTRIBUTES": "service.name=attr"}, "", "name"),
        ({}, {"DD_SERVICE": "dd", "OTEL_RESOURCE_ATTRIBUTES": "service.name=attr"}, "", "attr"),
        ({}, {"DD_SERVICE": "dd"}, "", "dd"),
        ({}, {"OTEL_RESOURCE_ATTRIBUTES": "service.name=attr"}, 'service_name = "file"\n', "attr"),
        ({}, {}, 'service_name = "file"\nresource_attributes = {"service.name" = "fileattr"}\n', "file"),
        ({"service_name": "arg"}, {"OTEL_RESOURCE_ATTRIBUTES": "service.name=attr"}, "", "arg"),
        ({"resource_attributes": {"service.name": "argattr"}}, {"OTEL_SERVICE_NAME": "name"}, "", "argattr"),
    ],
    ids=[
        "default",
        "attributes",
        "OTEL_SERVICE_NAME first",
        "attributes before DD_SERVICE",
        "DD_SERVICE",
        "env attributes before file",
        "file name before file attributes",
        "argument first",
        "argument attributes before env",
    ],
)
def test_service_name_precedence(
    arguments: dict[str, object], env: dict[str, str], file: str, expected: str, tmp_path: Path
) -> None:
    """service.name: argument, then variable, then file; at one level the dedicated setting before the attributes.

    DD_SERVICE, a vendor alias, gives way to service.name in OTEL_RESOURCE_ATTRIBUTES.
    """
    config = None
    if file:
        config = tmp_path / "bot.toml"
        config.write_text(file)
    settings = load_settings(arguments, env=env, config_file=config)
    assert settings.service_name == expected


def test_instance_id_from_attributes_and_its_override() -> None:
    """service.instance.id comes from OTEL_RESOURCE_ATTRIBUTES unless TRADETEL_INSTANCE_ID gives one."""
    env = {"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=bot-7"}
    assert load_settings(env=env).instance_id == "bot-7"
    assert load_settings(env={**env, "TRADETEL_INSTANCE_ID": "own"}).instance_id == "own"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("always_on", "always_on"), ("ALWAYS_OFF", "always_off"), (" trace_based ", "trace_based"), (None, "trace_based")],
)
def test_exemplar_filter_is_read(value: str | None, expected: str) -> None:
    """OTEL_METRICS_EXEMPLAR_FILTER takes the three specified values, in any case; the default is trace_based."""
    env = {} if value is None else {"OTEL_METRICS_EXEMPLAR_FILTER": value}
    assert load_settings(env=env).exemplar_filter == expected


def test_bad_exemplar_filter_names_the_variable() -> None:
    """An unknown exemplar filter raises ConfigurationError naming the variable and the accepted values."""
    with pytest.raises(ConfigurationError) as raised:
        load_settings(env={"OTEL_METRICS_EXEMPLAR_FILTER": "sometimes"})
    assert raised.value.setting == "OTEL_METRICS_EXEMPLAR_FILTER"
    assert "always_on, always_off or trace_based" in str(raised.value)


@pytest.mark.parametrize(
    ("env", "interval", "timeout"),
    [
        ({"OTEL_METRIC_EXPORT_INTERVAL": "60000", "OTEL_METRIC_EXPORT_TIMEOUT": "30000"}, 60.0, 30.0),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "250.5"}, 0.2505, 10.0),
    ],
)
def test_export_interval_and_timeout_are_milliseconds(env: dict[str, str], interval: float, timeout: float) -> None:
    """OTEL_METRIC_EXPORT_INTERVAL/TIMEOUT are milliseconds, as the SDK's PeriodicExportingMetricReader reads them."""
    settings = load_settings(env=env)
    assert (settings.export_interval, settings.export_timeout) == (interval, timeout)


@pytest.mark.parametrize("value", ["1", "yes", "enabled"])
def test_otel_booleans_are_true_or_false(value: str) -> None:
    """OTEL_EXPORTER_OTLP_INSECURE accepts true/false only (the SDK would read these as false, silently)."""
    with pytest.raises(ConfigurationError, match="OTEL_EXPORTER_OTLP_INSECURE"):
        load_settings(env={"OTEL_EXPORTER_OTLP_INSECURE": value})


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/metrics"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318//"}, "http://c:4318//v1/metrics"),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4318"}, "http://c:4318"),
        ({}, "http://localhost:4318/v1/metrics"),
    ],
)
def test_http_endpoint_resolution(env: dict[str, str], endpoint: str) -> None:
    """Over HTTP, /v1/metrics is appended to the generic endpoint only (one trailing slash removed, as the SDK)."""
    settings = load_settings(env={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", **env})
    assert settings.otlp.resolved_endpoint == endpoint


def test_argument_endpoint_is_used_as_is() -> None:
    """An otlp_endpoint argument is the full URL, like the SDK exporter's endpoint= argument."""
    settings = load_settings({"otlp_protocol": "http/protobuf", "otlp_endpoint": "http://c:4318"}, env={})
    assert settings.otlp.resolved_endpoint == "http://c:4318"


def test_signal_specific_protocol_decides_the_path() -> None:
    """OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=http/protobuf over a grpc default: the generic endpoint gets the path."""
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
    }
    settings = load_settings(env=env)
    assert (settings.otlp.protocol, settings.otlp.resolved_endpoint) == ("http/protobuf", "http://c:4318/v1/metrics")


def test_header_mapping_from_file_is_lower_cased(tmp_path: Path) -> None:
    """Headers given as a table in a file get lower-case keys, as in the variable."""
    config = tmp_path / "bot.toml"
    config.write_text('[otlp.headers]\nAuthorization = "Bearer x"\n')
    settings = load_settings(env={}, config_file=config)
    assert dict(settings.otlp.headers) == {"authorization": "Bearer x"}
