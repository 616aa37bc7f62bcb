"""Settings resolution: argument > environment > config file > default, and loud, precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradetel.config import SETTINGS, load_settings
from tradetel.errors import ConfigurationError


def test_defaults_without_any_source() -> None:
    """With no argument, variable or file every setting has its documented default."""
    settings = load_settings(env={})
    assert settings.service_name == "trading-bot"
    assert settings.exporters == ("prometheus",)
    assert (settings.prometheus.host, settings.prometheus.port, settings.prometheus.path) == (
        "127.0.0.1",
        9464,
        "/metrics",
    )
    assert settings.otlp.protocol == "grpc"
    assert settings.otlp.resolved_endpoint == "http://localhost:4317"
    assert settings.dogstatsd.url == "udp://localhost:8125"
    assert settings.export_interval == 10.0
    assert settings.strict is False


def test_precedence_argument_over_env_over_file(tmp_path: Path) -> None:
    """An argument beats the environment variable, which beats the config file, which beats the default."""
    config = tmp_path / "tradetel.toml"
    config.write_text('service_name = "from-file"\nnamespace = "filens"\n[prometheus]\nport = 9100\nhost = "0.0.0.0"\n')
    env = {"OTEL_SERVICE_NAME": "from-env", "OTEL_EXPORTER_PROMETHEUS_PORT": "9200"}
    settings = load_settings({"service_name": "from-arg"}, env=env, config_file=config)
    assert settings.service_name == "from-arg"
    assert settings.prometheus.port == 9200
    assert settings.prometheus.host == "0.0.0.0"
    assert settings.namespace == "filens"
    assert settings.config_file == str(config)


def test_yaml_config_file_via_env(tmp_path: Path) -> None:
    """TRADETEL_CONFIG_FILE names a YAML file whose sections fill the nested settings."""
    config = tmp_path / "tradetel.yaml"
    config.write_text("tradetel:\n  exporters: [prometheus, otlp]\n  otlp:\n    protocol: http/protobuf\n")
    settings = load_settings(env={"TRADETEL_CONFIG_FILE": str(config)})
    assert settings.exporters == ("prometheus", "otlp")
    assert settings.otlp.protocol == "http/protobuf"
    assert settings.otlp.resolved_endpoint == "http://localhost:4318/v1/metrics"


def test_otel_millisecond_variables_become_seconds() -> None:
    """OTEL_METRIC_EXPORT_INTERVAL is in milliseconds as the OTel spec says; arguments are seconds."""
    assert load_settings(env={"OTEL_METRIC_EXPORT_INTERVAL": "2500"}).export_interval == 2.5
    assert load_settings({"export_interval": 3}, env={}).export_interval == 3.0


def test_signal_specific_otlp_variables_win() -> None:
    """OTEL_EXPORTER_OTLP_METRICS_* overrides the generic OTEL_EXPORTER_OTLP_* variable."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4317",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:4317",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc,x-team=quant%20desk",
    }
    settings = load_settings(env=env)
    assert settings.otlp.endpoint == "http://metrics:4317"
    assert dict(settings.otlp.headers) == {"api-key": "abc", "x-team": "quant desk"}


def test_dogstatsd_url_from_agent_host_and_port() -> None:
    """DD_AGENT_HOST and DD_DOGSTATSD_PORT build the UDP address when DD_DOGSTATSD_URL is absent."""
    settings = load_settings(env={"DD_AGENT_HOST": "10.1.2.3", "DD_DOGSTATSD_PORT": "9125"})
    assert settings.dogstatsd.url == "udp://10.1.2.3:9125"
    url = load_settings(env={"DD_DOGSTATSD_URL": "unix:///var/run/datadog/dsd.socket"}).dogstatsd.url
    assert url == "unix:///var/run/datadog/dsd.socket"


def test_exporter_list_parsing() -> None:
    """OTEL_METRICS_EXPORTER is a comma list; duplicates collapse; `none` means no backend."""
    assert load_settings(env={"OTEL_METRICS_EXPORTER": "otlp, prometheus,otlp"}).exporters == ("otlp", "prometheus")
    assert load_settings(env={"OTEL_METRICS_EXPORTER": "none"}).exporters == ()
    assert load_settings({"exporters": ["dogstatsd"]}, env={}).exporters == ("dogstatsd",)


@pytest.mark.parametrize(
    ("env", "setting", "accepted"),
    [
        ({"OTEL_EXPORTER_PROMETHEUS_PORT": "abc"}, "OTEL_EXPORTER_PROMETHEUS_PORT", "integer from 0 to 65535"),
        ({"OTEL_EXPORTER_PROMETHEUS_PORT": "70000"}, "OTEL_EXPORTER_PROMETHEUS_PORT", "integer from 0 to 65535"),
        ({"OTEL_METRICS_EXPORTER": "prometheus,kafka"}, "OTEL_METRICS_EXPORTER", "comma-separated list"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc or http/protobuf"),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "-5"}, "OTEL_METRIC_EXPORT_INTERVAL", "positive number"),
        ({"TRADETEL_STRICT": "maybe"}, "TRADETEL_STRICT", "true or false"),
        ({"DD_DOGSTATSD_URL": "tcp://x:1"}, "DD_DOGSTATSD_URL", "udp://host:port"),
        ({"DD_DOGSTATSD_PORT": "eighty"}, "DD_DOGSTATSD_PORT", "integer"),
        ({"TRADETEL_NAMESPACE": "Trading-Bot"}, "TRADETEL_NAMESPACE", "lower-case word"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http:// or https://"),
    ],
)
def test_bad_environment_values_name_the_variable(env: dict[str, str], setting: str, accepted: str) -> None:
    """A bad variable raises ConfigurationError naming the variable, the bad value and the accepted forms."""
    with pytest.raises(ConfigurationError) as info:
        load_settings(env=env)
    message = str(info.value)
    assert info.value.setting == setting
    assert message.startswith(setting)
    assert repr(next(iter(env.values()))) in message
    assert accepted in message


def test_bad_header_value_is_not_echoed() -> None:
    """A malformed OTLP headers variable is reported without echoing its (secret) content."""
    with pytest.raises(ConfigurationError) as info:
        load_settings(env={"OTEL_EXPORTER_OTLP_HEADERS": "api-key-without-equals-s3cr3t"})
    assert "s3cr3t" not in str(info.value)
    assert "OTEL_EXPORTER_OTLP_HEADERS" in str(info.value)


def test_headers_are_redacted_in_repr() -> None:
    """OTLP header values never appear in the settings' repr."""
    settings = load_settings(env={"OTEL_EXPORTER_OTLP_HEADERS": "api-key=topsecret"})
    assert "topsecret" not in repr(settings)
    assert settings.otlp.headers["api-key"] == "topsecret"


def test_unknown_argument_and_file_key_are_rejected(tmp_path: Path) -> None:
    """A misspelt argument or config-file key fails loudly instead of being ignored."""
    with pytest.raises(ConfigurationError, match="prometheus_prot"):
        load_settings({"prometheus_prot": 1}, env={})
    config = tmp_path / "c.toml"
    config.write_text("[prometheus]\nprot = 1\n")
    with pytest.raises(ConfigurationError, match=r"prometheus\.prot"):
        load_settings(env={}, config_file=config)


def test_bad_file_value_names_key_and_file(tmp_path: Path) -> None:
    """A bad value in the config file names the key and the file."""
    config = tmp_path / "c.toml"
    config.write_text("[prometheus]\nport = 'high'\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(env={}, config_file=config)
    assert "prometheus.port" in str(info.value) and "c.toml" in str(info.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    """A missing file, an unknown suffix and broken TOML/YAML each raise ConfigurationError."""
    with pytest.raises(ConfigurationError, match="readable file"):
        load_settings(env={}, config_file=tmp_path / "absent.toml")
    ini = tmp_path / "c.ini"
    ini.write_text("x=1")
    with pytest.raises(ConfigurationError, match=r"\.toml, \.yaml"):
        load_settings(env={}, config_file=ini)
    broken = tmp_path / "c.toml"
    broken.write_text("service_name = \n")
    with pytest.raises(ConfigurationError, match="valid TOML"):
        load_settings(env={}, config_file=broken)
    broken_yaml = tmp_path / "c.yaml"
    broken_yaml.write_text("a: [1,\n")
    with pytest.raises(ConfigurationError, match="valid YAML"):
        load_settings(env={}, config_file=broken_yaml)


def test_every_setting_has_docs_and_an_env_name() -> None:
    """Each row of the settings table is documented and reachable from the environment."""
    for setting in SETTINGS:
        assert setting.doc and setting.accepted and setting.env, setting.path
        assert all(name.isupper() for name in setting.env)
