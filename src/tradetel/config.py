"""Settings: the one place tradetel reads arguments, environment variables and config files.

Every setting is resolved in this order: an explicit argument to
:func:`tradetel.configure`, then its environment variable, then the config
file (TOML or YAML, from ``config_file=`` or ``TRADETEL_CONFIG_FILE``), then
the default. A value that cannot be used raises
:class:`~tradetel.errors.ConfigurationError` naming the setting (the argument,
variable or file key it came from), the bad value and the accepted forms.

The table :data:`SETTINGS` lists every setting; the configuration reference in
the docs is generated from it.

Example::

    >>> settings = load_settings({"service_name": "grid-bot"}, env={"OTEL_EXPORTER_PROMETHEUS_PORT": "9100"})
    >>> settings.service_name, settings.prometheus.port
    ('grid-bot', 9100)
"""

from __future__ import annotations

import hmac
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import ConfigurationError

__all__ = [
    "SETTINGS",
    "DogStatsdSettings",
    "OtlpSettings",
    "PrometheusSettings",
    "Secret",
    "Settings",
    "load_settings",
]

EXPORTER_NAMES = ("prometheus", "otlp", "dogstatsd", "console", "none")
OTLP_PROTOCOLS = ("grpc", "http/protobuf")
OTLP_COMPRESSIONS = ("none", "gzip", "deflate")
TEMPORALITIES = ("cumulative", "delta", "lowmemory")
DOGSTATSD_MODES = ("datadog", "statsd")
EXEMPLAR_FILTERS = ("always_on", "always_off", "trace_based")
OTLP_METRICS_PATH = "/v1/metrics"


class _Redacting(Mapping[str, Any]):
    """A read-only mapping whose repr hides what is secret in it; subclasses say what."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and self._data == dict(other)

    __hash__ = None  # type: ignore[assignment]


class _Secret(_Redacting):
    """A read-only mapping whose repr never shows the values (OTLP headers)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: '<redacted>'" for k in self._data) + "}"


class Secret:
    """A secret string (a password): its ``repr`` and ``str`` never show it; :meth:`reveal` does.

    Example::

        >>> password = Secret("hunter2")
        >>> password, password.reveal()
        ('<redacted>', 'hunter2')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the code that must use it."""
        return self._value

    def __repr__(self) -> str:
        return "'<redacted>'"

    def __str__(self) -> str:
        return "<redacted>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


_SECRET_KEYS = frozenset({"hash_key"})


def _redact(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: "<redacted>" if k in _SECRET_KEYS else _redact(v) for k, v in value.items()}
    return value


class _Overrides(_Redacting):
    """Read-only per-instrument overrides whose repr hides secret fields (a label policy's ``hash_key``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(_redact(self._data))


@dataclass(frozen=True, slots=True, kw_only=True)
class PrometheusSettings:
    """Where the Prometheus ``/metrics`` endpoint listens, and how it is protected (TLS, basic auth)."""

    host: str = "127.0.0.1"
    port: int = 9464
    path: str = "/metrics"
    tls_cert: str | None = None
    tls_key: str | None = None
    basic_auth_username: str | None = None
    basic_auth_password: Secret | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OtlpSettings:
    """The OTLP exporter, as the standard ``OTEL_EXPORTER_OTLP_*`` variables describe it."""

    protocol: str = "grpc"
    endpoint: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: _Secret({}))
    timeout: float = 10.0
    compression: str = "none"
    insecure: bool | None = None
    certificate: str | None = None
    client_key: str | None = None
    client_certificate: str | None = None
    temporality: str = "cumulative"

    @property
    def resolved_endpoint(self) -> str:
        """The endpoint the exporter will use: the configured one or the protocol's default.

        :func:`load_settings` has already appended ``/v1/metrics`` to a generic
        ``OTEL_EXPORTER_OTLP_ENDPOINT`` for HTTP, as the specification says.
        """
        if self.endpoint:
            return self.endpoint
        return "http://localhost:4317" if self.protocol == "grpc" else "http://localhost:4318" + OTLP_METRICS_PATH


@dataclass(frozen=True, slots=True, kw_only=True)
class DogStatsdSettings:
    """The DogStatsD exporter: where to send, the unified service tags, constant tags and origin detection."""

    url: str = "udp://localhost:8125"
    env: str | None = None
    service: str | None = None
    version: str | None = None
    mode: str = "datadog"
    max_packet_size: int = 1432
    tags: tuple[str, ...] = ()
    entity_id: str | None = None
    origin_detection: bool = True
    external_env: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every resolved setting. Built by :func:`load_settings`; immutable."""

    disabled: bool = False
    service_name: str = "trading-bot"
    service_version: str | None = None
    environment: str | None = None
    instance_id: str | None = None
    resource_attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    exporters: tuple[str, ...] = ("prometheus",)
    namespace: str = "trading"
    strict: bool = False
    export_interval: float = 10.0
    export_timeout: float = 10.0
    exemplar_filter: str = "trace_based"
    cardinality_limit: int = 1000
    shutdown_timeout: float = 5.0
    handle_sigterm: bool = False
    runtime_metrics: bool = True
    set_global_meter_provider: bool = False
    config_file: str | None = None
    prometheus: PrometheusSettings = field(default_factory=PrometheusSettings)
    otlp: OtlpSettings = field(default_factory=OtlpSettings)
    dogstatsd: DogStatsdSettings = field(default_factory=DogStatsdSettings)
    instruments: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _Overrides({}))
    origins: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)
    """Where each value not left at its default came from: the argument, variable or file key, by setting path."""


# --- parsers: each takes the raw value and returns the parsed one or raises ValueError ------------


def _text(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError
    return raw.strip()


def _optional_text(raw: object) -> str | None:
    if raw is None:
        return None
    return _text(raw)


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(raw, str) and raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _optional_bool(raw: object) -> bool | None:
    return None if raw is None else _bool(raw)


def _otel_bool(raw: object) -> bool:
    """An OpenTelemetry boolean: ``true`` or ``false`` in any case (the SDK reads anything else as false)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ValueError


def _optional_otel_bool(raw: object) -> bool | None:
    return None if raw is None else _otel_bool(raw)


def _int(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("+").isdigit():
        return int(raw.strip())
    raise ValueError


def _port(raw: object) -> int:
    port = _int(raw)
    if not 0 <= port <= 65535:
        raise ValueError
    return port


def _positive_int(raw: object) -> int:
    value = _int(raw)
    if value < 1:
        raise ValueError
    return value


def _packet_size(raw: object) -> int:
    value = _int(raw)
    if not 512 <= value <= 65507:
        raise ValueError
    return value


def _number(raw: object) -> float:
    if isinstance(raw, bool):
        raise ValueError
    value = float(raw) if isinstance(raw, int | float | str) else math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError
    return value


def _millis(raw: object) -> float:
    """OTel's ``*_INTERVAL``/``*_TIMEOUT`` variables are milliseconds; tradetel keeps seconds."""
    return _number(raw) / 1000.0


def _choice(choices: tuple[str, ...]) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        value = _text(raw).lower()
        if value not in choices:
            raise ValueError
        return value

    return parse


def _exporters(raw: object) -> tuple[str, ...]:
    items = [str(x) for x in raw] if isinstance(raw, list | tuple) else _text(raw).split(",")
    names = tuple(dict.fromkeys(item.strip().lower() for item in items if item.strip()))
    if not names or any(name not in EXPORTER_NAMES for name in names):
        raise ValueError
    if "none" in names:
        if len(names) > 1:
            raise ValueError
        return ()
    return names


def _resource_attributes(raw: object) -> Mapping[str, str]:
    """``key=value,...`` read as the SDK's ``OTELResourceDetector`` does (values percent-decoded), or a mapping.

    An item without ``=`` or with an empty key is an error here; the SDK logs and skips it.
    """
    if isinstance(raw, Mapping):
        return MappingProxyType({str(k): str(v) for k, v in raw.items()})
    result: dict[str, str] = {}
    for item in _text(raw).split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError
        result[key.strip()] = unquote(value.strip())
    return MappingProxyType(result)


# The header grammar of the OTLP exporter specification, as opentelemetry.util.re parses it: a token
# key, then a percent-encoded value; with the SDK's "liberal" fallback a value may also hold spaces and
# is then taken literally (not decoded).
_OWS = r"[ \t]*"
_TOKEN = r"[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+"
_HEADER = re.compile(rf"{_OWS}{_TOKEN}{_OWS}={_OWS}[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*{_OWS}")
_LIBERAL_HEADER = re.compile(rf"{_OWS}{_TOKEN}{_OWS}={_OWS}[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*{_OWS}")
_HEADER_DELIMITER = re.compile(r"[ \t]*,[ \t]*")
_TOKEN_ONLY = re.compile(_TOKEN)


class _HeaderError(ValueError):
    """A header that cannot be sent; ``detail`` says which and why without showing its value."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _ordinal(index: int) -> str:
    suffix = "th" if 10 <= index % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(index % 10, "th")
    return f"{index}{suffix}"


def _headers(raw: object) -> Mapping[str, str]:
    """OTLP headers: ``key=value,...`` parsed as the SDK parses them (keys lower-cased), or a mapping."""
    result: dict[str, str] = {}
    if isinstance(raw, Mapping):
        for index, (key, value) in enumerate(raw.items(), 1):
            if not isinstance(key, str) or not _TOKEN_ONLY.fullmatch(key) or not isinstance(value, str | int | float):
                raise _HeaderError(f"the {_ordinal(index)} header is not a token key with a string value")
            result[key.lower()] = str(value)
        return _Secret(result)
    if not isinstance(raw, str):
        raise ValueError
    for index, item in enumerate(_HEADER_DELIMITER.split(raw), 1):
        if not item:
            continue
        if _HEADER.fullmatch(item.strip()):
            key, value = item.split("=", 1)
            result[unquote(key).strip().lower()] = unquote(value).strip()
        elif _LIBERAL_HEADER.fullmatch(item.strip()):
            key, value = item.split("=", 1)
            result[key.strip().lower()] = value.strip()
        else:
            raise _HeaderError(f"the {_ordinal(index)} header is not key=value with a token key")
    return _Secret(result)


_GRPC_KEY = re.compile(r"[0-9a-z_.-]+")
_GRPC_VALUE = re.compile(r"[\x20-\x7e]*")
_HTTP_VALUE = re.compile(r"[\x20-\x7e\x80-\xff\t]*")


def header_problem(headers: Mapping[str, str], protocol: str) -> str | None:
    """Why a parsed header cannot be sent over ``protocol`` (naming its key, never its value), or None."""
    for key, value in headers.items():
        if protocol == "grpc":
            if not _GRPC_KEY.fullmatch(key):
                return f"header {key!r}: gRPC metadata keys are lower-case letters, digits, '-', '_' and '.'"
            if key.endswith("-bin"):
                return f"header {key!r}: binary gRPC metadata (keys ending in -bin) cannot be configured"
            if not _GRPC_VALUE.fullmatch(value):
                return f"header {key!r}: gRPC metadata values are printable ASCII (decoded value has other characters)"
        elif not _TOKEN_ONLY.fullmatch(key):
            return f"header {key!r}: an HTTP header name is a token (no spaces, no separators) once decoded"
        elif not _HTTP_VALUE.fullmatch(value):
            return f"header {key!r}: HTTP header values cannot hold control characters or non-Latin-1 text"
    return None


def _namespace(raw: object) -> str:
    value = _text(raw)
    if not value.replace("_", "a").isalnum() or not value[0].isalpha() or value != value.lower():
        raise ValueError
    return value


def _url(raw: object) -> str:
    value = _text(raw)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError from None
    return value


def _dogstatsd_url(raw: object) -> str:
    value = _text(raw)
    parts = urlsplit(value)
    if parts.scheme in ("unix", "unixgram", "unixstream") and parts.path:
        return value
    if parts.scheme == "udp" and parts.hostname:
        try:
            port = parts.port
        except ValueError:
            raise ValueError from None
        return f"udp://{parts.hostname}:{port or 8125}"
    raise ValueError


def _dogstatsd_tags(raw: object) -> tuple[str, ...]:
    """``DD_TAGS``: tags separated by commas or white space; from a file or argument, also a list or a mapping."""
    if isinstance(raw, Mapping):
        items = [f"{key}:{value}" for key, value in raw.items()]
    elif isinstance(raw, list | tuple):
        items = [str(item) for item in raw]
    elif isinstance(raw, str):
        items = raw.replace(",", " ").split()
    else:
        raise ValueError
    tags = tuple(item.strip() for item in items if item.strip())
    if any(_FIELD_BREAKERS.search(tag) for tag in tags):
        raise ValueError
    return tags


_FIELD_BREAKERS = re.compile(r"[|,#\s]")


def _tag_value(raw: object) -> str:
    """A value sent inside the tag list: nothing that could end the tag, the field or the line."""
    value = _text(raw)
    if _FIELD_BREAKERS.search(value):
        raise ValueError
    return value


def _field(raw: object) -> str:
    """A value sent as a DogStatsD field of its own (``|e:``): nothing that could end the field or the line."""
    value = _text(raw)
    if "|" in value or any(c.isspace() for c in value):
        raise ValueError
    return value


def _detection(raw: object) -> bool:
    """``DD_ORIGIN_DETECTION_ENABLED``: the ``datadog`` client's false words (``n`` included), or true ones."""
    if isinstance(raw, bool):
        return raw
    value = _text(raw).lower()
    if value in ("no", "false", "0", "n", "off"):
        return False
    if value in ("yes", "true", "1", "y", "on"):
        return True
    raise ValueError


def _username(raw: object) -> str:
    value = _text(raw)
    if ":" in value:  # RFC 7617: the user-id of basic auth cannot contain a colon
        raise ValueError
    return value


def _secret(raw: object) -> Secret:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError
    return Secret(raw)


def _path(raw: object) -> str:
    value = _text(raw)
    if not value.startswith("/"):
        raise ValueError
    return value


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the settings table: where a value may come from and how it is parsed."""

    path: str
    env: tuple[str, ...]
    parse: Callable[[object], Any]
    accepted: str
    doc: str
    secret: bool = False

    @property
    def argument(self) -> str:
        return self.path.replace(".", "_")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "disabled",
        ("OTEL_SDK_DISABLED",),
        _otel_bool,
        "true or false",
        "`true` turns tradetel into a no-op: handles and decorators accept every call, nothing is collected, "
        "exported or served. Default false.",
    ),
    Setting(
        "service_name",
        ("OTEL_SERVICE_NAME", "DD_SERVICE"),
        _text,
        "a non-empty string",
        "`service.name` resource attribute. `service.name` in `OTEL_RESOURCE_ATTRIBUTES` wins over "
        "`DD_SERVICE`, the file and the default `trading-bot`.",
    ),
    Setting(
        "service_version",
        ("TRADETEL_SERVICE_VERSION", "DD_VERSION"),
        _optional_text,
        "a non-empty string",
        "`service.version` resource attribute.",
    ),
    Setting(
        "environment",
        ("TRADETEL_ENVIRONMENT", "DD_ENV"),
        _optional_text,
        "a non-empty string",
        "`deployment.environment.name` resource attribute (`paper`, `live`...).",
    ),
    Setting(
        "instance_id",
        ("TRADETEL_INSTANCE_ID",),
        _optional_text,
        "a non-empty string",
        "`service.instance.id`; then `service.instance.id` in the resource attributes, else a random id per process.",
    ),
    Setting(
        "resource_attributes",
        ("OTEL_RESOURCE_ATTRIBUTES",),
        _resource_attributes,
        "comma-separated key=value pairs (values percent-decoded)",
        "Extra resource attributes; the settings above win over the same keys here, except as they say.",
    ),
    Setting(
        "exporters",
        ("OTEL_METRICS_EXPORTER",),
        _exporters,
        "a comma-separated list of " + ", ".join(EXPORTER_NAMES),
        "Which backends to start. Default `prometheus`. `none` starts no exporter.",
    ),
    Setting(
        "namespace",
        ("TRADETEL_NAMESPACE",),
        _namespace,
        "one lower-case word (letters, digits, _)",
        "Prefix of every catalog instrument name. Default `trading`.",
    ),
    Setting(
        "strict",
        ("TRADETEL_STRICT",),
        _bool,
        "true or false",
        "Raise typed errors on bad measurements instead of dropping them. Default false.",
    ),
    Setting(
        "export_interval",
        ("OTEL_METRIC_EXPORT_INTERVAL",),
        _millis,
        "a positive number of milliseconds",
        "Push interval for OTLP, DogStatsD and console, in ms (env) or seconds (argument/file). Default 10 s.",
    ),
    Setting(
        "export_timeout",
        ("OTEL_METRIC_EXPORT_TIMEOUT",),
        _millis,
        "a positive number of milliseconds",
        "Time limit of one push export, in ms (env) or seconds (argument/file). Default 10 s.",
    ),
    Setting(
        "exemplar_filter",
        ("OTEL_METRICS_EXEMPLAR_FILTER",),
        _choice(EXEMPLAR_FILTERS),
        "always_on, always_off or trace_based",
        "Which counter and histogram measurements become exemplars: `trace_based` those inside a sampled "
        "span (only with a tracer provider set before configure()), `always_on` all, `always_off` none. "
        "Default `trace_based`.",
    ),
    Setting(
        "cardinality_limit",
        ("TRADETEL_CARDINALITY_LIMIT",),
        _positive_int,
        "an integer >= 1",
        "Default series limit per instrument; the catalog may set its own. Default 1000.",
    ),
    Setting(
        "shutdown_timeout",
        ("TRADETEL_SHUTDOWN_TIMEOUT",),
        _number,
        "a positive number of seconds",
        "Deadline for the final flush on shutdown. Default 5 s.",
    ),
    Setting(
        "handle_sigterm",
        ("TRADETEL_HANDLE_SIGTERM",),
        _bool,
        "true or false",
        "On SIGTERM, flush within shutdown_timeout, then exit with status 143; a previous handler is called "
        "instead. Needs configure() in the main thread. Default false.",
    ),
    Setting(
        "runtime_metrics",
        ("TRADETEL_RUNTIME_METRICS",),
        _bool,
        "true or false",
        "[Process and Python runtime metrics](runtime-metrics.md) (`process.cpu.time`, `process.memory.usage`, "
        "`cpython.gc.*`...), read at collection time. Default true.",
    ),
    Setting(
        "set_global_meter_provider",
        ("TRADETEL_SET_GLOBAL_METER_PROVIDER",),
        _bool,
        "true or false",
        "Make tradetel's MeterProvider the global OpenTelemetry one, so that metrics of "
        "`opentelemetry-instrumentation-*` packages go through tradetel (see coexisting.md). Default false.",
    ),
    Setting(
        "prometheus.host",
        ("OTEL_EXPORTER_PROMETHEUS_HOST",),
        _text,
        "a host name or IP address",
        "Address of the `/metrics` endpoint. Default `127.0.0.1`; anything else is an explicit choice.",
    ),
    Setting(
        "prometheus.port",
        ("OTEL_EXPORTER_PROMETHEUS_PORT",),
        _port,
        "an integer from 0 to 65535",
        "Port of the `/metrics` endpoint; 0 picks a free port. Default 9464.",
    ),
    Setting(
        "prometheus.path",
        ("TRADETEL_PROMETHEUS_PATH",),
        _path,
        "a path starting with /",
        "HTTP path of the endpoint. Default `/metrics`.",
    ),
    Setting(
        "prometheus.tls_cert",
        ("TRADETEL_PROMETHEUS_TLS_CERT",),
        _optional_text,
        "a path to a PEM certificate (chain) file",
        "Serve `/metrics` over HTTPS with this certificate; needs `TRADETEL_PROMETHEUS_TLS_KEY`.",
    ),
    Setting(
        "prometheus.tls_key",
        ("TRADETEL_PROMETHEUS_TLS_KEY",),
        _optional_text,
        "a path to the PEM private key of the certificate (unencrypted)",
        "Private key of `TRADETEL_PROMETHEUS_TLS_CERT`.",
    ),
    Setting(
        "prometheus.basic_auth_username",
        ("TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME",),
        _username,
        "a non-empty string without ':'",
        "Require HTTP basic auth on `/metrics` with this user; needs the password.",
    ),
    Setting(
        "prometheus.basic_auth_password",
        ("TRADETEL_PROMETHEUS_BASIC_AUTH_PASSWORD",),
        _secret,
        "a non-empty string",
        "Password of the basic-auth user (secret: never logged).",
        secret=True,
    ),
    Setting(
        "otlp.protocol",
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        _choice(OTLP_PROTOCOLS),
        "grpc or http/protobuf",
        "OTLP transport. Default `grpc`.",
    ),
    Setting(
        "otlp.endpoint",
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        _url,
        "an http:// or https:// URL",
        "Collector URL. Over HTTP, `/v1/metrics` is appended to `OTEL_EXPORTER_OTLP_ENDPOINT` only; the "
        "others are used as they are. Default `http://localhost:4317` (grpc) or "
        "`http://localhost:4318/v1/metrics` (http).",
    ),
    Setting(
        "otlp.headers",
        ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
        _headers,
        "comma-separated key=value pairs (token keys, percent-encoded values)",
        "Request headers; keys are lower-cased (secret: never logged).",
        secret=True,
    ),
    Setting(
        "otlp.timeout",
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
        _millis,
        "a positive number of milliseconds",
        "Per-request timeout, in ms (env) or seconds. Default 10 s.",
    ),
    Setting(
        "otlp.compression",
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"),
        _choice(OTLP_COMPRESSIONS),
        "none, gzip or deflate",
        "Payload compression. Default `none`.",
    ),
    Setting(
        "otlp.insecure",
        ("OTEL_EXPORTER_OTLP_METRICS_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"),
        _optional_otel_bool,
        "true or false",
        "gRPC without TLS; default from the endpoint scheme (`https` is always TLS).",
    ),
    Setting(
        "otlp.certificate",
        ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"),
        _optional_text,
        "a path to a PEM file",
        "CA certificate to verify the collector.",
    ),
    Setting(
        "otlp.client_key",
        ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        _optional_text,
        "a path to a PEM file",
        "Private key of the client certificate (mutual TLS).",
    ),
    Setting(
        "otlp.client_certificate",
        ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        _optional_text,
        "a path to a PEM file",
        "Client certificate (chain) presented to the collector (mutual TLS).",
    ),
    Setting(
        "otlp.temporality",
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",),
        _choice(TEMPORALITIES),
        "cumulative, delta or lowmemory",
        "Aggregation temporality sent over OTLP. Default `cumulative`.",
    ),
    Setting(
        "dogstatsd.url",
        ("DD_DOGSTATSD_URL",),
        _dogstatsd_url,
        "udp://host:port, unix:///path/to/socket, unixgram:///path or unixstream:///path",
        "Where DogStatsD datagrams go. Default from DD_DOGSTATSD_SOCKET, else DD_AGENT_HOST/DD_DOGSTATSD_PORT, "
        "else udp://localhost:8125.",
    ),
    Setting("dogstatsd.env", ("DD_ENV",), _optional_text, "a non-empty string", "`env:` tag on every metric."),
    Setting(
        "dogstatsd.service",
        ("DD_SERVICE",),
        _optional_text,
        "a non-empty string",
        "`service:` tag; default the service name.",
    ),
    Setting(
        "dogstatsd.version",
        ("DD_VERSION",),
        _optional_text,
        "a non-empty string",
        "`version:` tag; default the service version.",
    ),
    Setting(
        "dogstatsd.mode",
        ("TRADETEL_DOGSTATSD_MODE",),
        _choice(DOGSTATSD_MODES),
        "datadog or statsd",
        "`statsd` emits only what the collector's statsd receiver accepts. Default `datadog`.",
    ),
    Setting(
        "dogstatsd.max_packet_size",
        ("TRADETEL_DOGSTATSD_MAX_PACKET_SIZE",),
        _packet_size,
        "an integer from 512 to 65507",
        "Largest UDP datagram. Default 1432.",
    ),
    Setting(
        "dogstatsd.tags",
        ("DD_TAGS", "DATADOG_TAGS"),
        _dogstatsd_tags,
        "tags such as team:quant,desk:eu (commas or spaces between tags; no |, # or spaces inside one)",
        "Constant tags on every metric. `DATADOG_TAGS` is read when `DD_TAGS` is not set.",
    ),
    Setting(
        "dogstatsd.entity_id",
        ("DD_ENTITY_ID",),
        _tag_value,
        "an id without |, commas, # or spaces",
        "Sent as the `dd.internal.entity_id` tag (the pod uid the DataDog Agent uses for origin detection).",
    ),
    Setting(
        "dogstatsd.origin_detection",
        ("DD_ORIGIN_DETECTION_ENABLED",),
        _detection,
        "true/false (also yes/no, 1/0, on/off, y/n)",
        "Send the container id read from cgroups as the `|c:` field (`datadog` mode). Default true.",
    ),
    Setting(
        "dogstatsd.external_env",
        ("DD_EXTERNAL_ENV",),
        _field,
        "a value without | or spaces, such as it-false,cn-app,pu-<pod uid>",
        "Sent as the `|e:` field (`datadog` mode); set by the DataDog admission controller.",
    ),
)
"""Every setting, in documentation order."""

_BY_PATH = {s.path: s for s in SETTINGS}
_SECTIONS = {"prometheus": PrometheusSettings, "otlp": OtlpSettings, "dogstatsd": DogStatsdSettings}


def _fail(setting: Setting, origin: str, raw: object) -> ConfigurationError:
    return ConfigurationError(origin, raw, setting.accepted, secret=setting.secret)


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML or YAML config file into a flat ``{dotted.path: value}`` dict (plus ``instruments``)."""
    file = Path(path)
    where = f"config file {str(file)!r}"
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError("TRADETEL_CONFIG_FILE", str(file), f"a readable file ({exc.strerror})") from None
    try:
        if file.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif file.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise ConfigurationError("TRADETEL_CONFIG_FILE", str(file), "a .toml, .yaml or .yml file")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(where, str(exc).splitlines()[0], "valid TOML") from None
    except Exception as exc:  # yaml.YAMLError has no common base we can import lazily
        raise ConfigurationError(where, _yaml_problem(exc), "valid YAML") from None
    if not isinstance(data, dict):
        raise ConfigurationError(where, type(data).__name__, "a mapping at the top level")
    if isinstance(data.get("tradetel"), dict) and len(data) == 1:
        data = data["tradetel"]
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key == "instruments":
            if not isinstance(value, dict):
                raise ConfigurationError(f"{where}: instruments", value, "a table of instrument overrides")
            flat["instruments"] = value
        elif key == "ops":  # objectives of the generated rules and dashboards, read by tradetel.ops
            if not isinstance(value, dict):
                raise ConfigurationError(f"{where}: ops", value, "a table of objectives (see docs/operate.md)")
            flat["ops"] = value
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigurationError(f"{where}: {key}", value, f"a table of {key} settings")
            for sub, subvalue in value.items():
                flat[f"{key}.{sub}"] = subvalue
        else:
            flat[key] = value
    for key in flat:
        if key not in ("instruments", "ops") and key not in _BY_PATH:
            raise ConfigurationError(f"{where}: {key}", flat[key], "one of " + ", ".join(sorted(_BY_PATH)), secret=True)
    return flat


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _yaml_problem(error: Exception) -> str:
    """Where and what the YAML problem is, without the file's text.

    The YAML parser quotes the offending text in its messages (``found undefined alias 'hunter2'``
    for an unquoted ``*hunter2`` password), and that text may be a secret: keep the position and
    the kind of problem only.
    """
    problem = _QUOTED.sub("", str(getattr(error, "problem", None) or "a syntax error"))
    problem = " ".join(problem.replace(" ,", ",").split())
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    hint = ""
    if "alias" in problem or "tag" in problem or "cannot start any token" in problem:
        hint = " (a value starting with *, !, &, %, @ or ` must be quoted)"
    return f"{where}{problem}{hint}"


def _dogstatsd_url_from_parts(env: Mapping[str, str]) -> str | None:
    path = env.get("DD_DOGSTATSD_SOCKET", "").strip()
    if path:
        if not path.startswith("/"):
            raise ConfigurationError("DD_DOGSTATSD_SOCKET", path, "an absolute path to a Unix socket")
        return "unix://" + path
    host = env.get("DD_AGENT_HOST")
    port = env.get("DD_DOGSTATSD_PORT")
    if not host and not port:
        return None
    if port is not None:
        try:
            _port(port)
        except ValueError:
            raise ConfigurationError("DD_DOGSTATSD_PORT", port, "an integer from 0 to 65535") from None
    return f"udp://{host or 'localhost'}:{port or 8125}"


def load_settings(
    arguments: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """Resolve every setting: argument, then environment variable, then config file, then default.

    Args:
        arguments: explicit values, keyed by argument name (``prometheus_port``) or dotted path.
            ``None`` values count as not given.
        env: the environment to read; default ``os.environ``.
        config_file: a TOML or YAML file; default ``TRADETEL_CONFIG_FILE`` from ``env``.

    Raises:
        ConfigurationError: a value is unusable or an argument name is unknown.
    """
    env = os.environ if env is None else env
    given: dict[str, Any] = {}
    for name, value in (arguments or {}).items():
        path = name if name in _BY_PATH or name == "instruments" else None
        if path is None:
            for setting in SETTINGS:
                if setting.argument == name:
                    path = setting.path
        if path is None:
            raise ConfigurationError(name, value, "one of " + ", ".join(s.argument for s in SETTINGS), secret=True)
        if value is not None:
            given[path] = value

    file_path = config_file if config_file is not None else env.get("TRADETEL_CONFIG_FILE") or None
    from_file = read_config_file(file_path) if file_path else {}

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    ranks: dict[str, int] = {}  # 0 argument, 1 environment variable, 2 config file (absent: the default)
    for setting in SETTINGS:
        origin, raw = _source(setting, given, env, from_file, file_path)
        if origin is None:
            continue
        if setting.path in ("export_interval", "export_timeout", "otlp.timeout") and not origin.startswith("OTEL"):
            parse: Callable[[object], Any] = _number  # seconds when given as an argument or in a file
        else:
            parse = setting.parse
        try:
            values[setting.path] = parse(raw)
        except _HeaderError as error:
            raise ConfigurationError(origin, raw, f"{setting.accepted}; {error.detail}", secret=True) from None
        except (ValueError, TypeError):
            raise _fail(setting, origin, raw) from None
        origins[setting.path] = origin
        ranks[setting.path] = 0 if setting.path in given else 1 if origin in setting.env else 2
    _apply_otel_rules(values, origins, ranks)

    if "dogstatsd.url" not in values:
        url = _dogstatsd_url_from_parts(env)
        if url is not None:
            values["dogstatsd.url"] = url
            origins["dogstatsd.url"] = (
                "DD_DOGSTATSD_SOCKET" if url.startswith("unix://") else "DD_AGENT_HOST/DD_DOGSTATSD_PORT"
            )

    if values.get("disabled"):
        values["exporters"] = ()  # OTEL_SDK_DISABLED: nothing is started, whatever else is configured
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    top: dict[str, Any] = {}
    for path, value in values.items():
        section, _, key = path.partition(".")
        if key:
            sections[section][key] = value
        else:
            top[path] = value
    _check_pairs(values, origins)
    instruments = given.get("instruments", from_file.get("instruments", {}))
    if not isinstance(instruments, Mapping):
        raise ConfigurationError("instruments", instruments, "a mapping of instrument name to overrides")
    return Settings(
        **top,
        config_file=str(file_path) if file_path else None,
        prometheus=PrometheusSettings(**sections["prometheus"]),
        otlp=OtlpSettings(**sections["otlp"]),
        dogstatsd=DogStatsdSettings(**sections["dogstatsd"]),
        instruments=_Overrides(instruments),
        origins=MappingProxyType(_with_instruments_origin(origins, given, from_file, file_path)),
    )


def _from_resource(
    values: dict[str, Any], origins: dict[str, str], ranks: Mapping[str, int], path: str, key: str, weaker: str = ""
) -> None:
    """Take ``key`` of the resource attributes for ``path`` when it comes from a stronger source.

    Sources rank as everywhere (argument, variable, file, default); at the same rank the dedicated
    setting wins (``OTEL_SERVICE_NAME`` over ``OTEL_RESOURCE_ATTRIBUTES``, as in the SDK) unless it came
    from ``weaker`` (the vendor alias ``DD_SERVICE``).
    """
    attribute = values.get("resource_attributes", {}).get(key)
    if not attribute:
        return
    own, theirs = ranks.get(path, 3), ranks.get("resource_attributes", 3)
    if theirs < own or (theirs == own and origins.get(path) == weaker):
        values[path] = attribute
        origins[path] = f"{origins['resource_attributes']}[{key}]"


def _apply_otel_rules(values: dict[str, Any], origins: dict[str, str], ranks: Mapping[str, int]) -> None:
    """What the OpenTelemetry specification defines across settings: endpoint paths, resource precedence."""
    if origins.get("otlp.endpoint") == "OTEL_EXPORTER_OTLP_ENDPOINT" and values.get("otlp.protocol") == "http/protobuf":
        # The generic endpoint is a base URL: each signal appends its path (the signal variable is used as is).
        values["otlp.endpoint"] = values["otlp.endpoint"].removesuffix("/") + OTLP_METRICS_PATH
    _from_resource(values, origins, ranks, "service_name", "service.name", weaker="DD_SERVICE")
    _from_resource(values, origins, ranks, "instance_id", "service.instance.id")
    headers = values.get("otlp.headers")
    if headers and "otlp" in values.get("exporters", ("prometheus",)):
        problem = header_problem(headers, values.get("otlp.protocol", "grpc"))
        if problem is not None:
            raise ConfigurationError(
                origins["otlp.headers"],
                headers,
                f"headers {values.get('otlp.protocol', 'grpc')} can send; {problem}",
                secret=True,
            )


def _with_instruments_origin(
    origins: dict[str, str], given: Mapping[str, Any], from_file: Mapping[str, Any], file_path: object
) -> dict[str, str]:
    if "instruments" in given:
        origins["instruments"] = "instruments"
    elif "instruments" in from_file:
        origins["instruments"] = f"instruments (in {file_path})"
    return origins


_PAIRS = (
    ("prometheus.tls_cert", "prometheus.tls_key", "TLS needs both the certificate and its key"),
    ("prometheus.basic_auth_username", "prometheus.basic_auth_password", "basic auth needs a user and a password"),
)


def _check_pairs(values: Mapping[str, Any], origins: Mapping[str, str]) -> None:
    """Settings that only work together: one without the other is a mistake, not a half-enabled feature."""
    for first, second, why in _PAIRS:
        for present, missing in ((first, second), (second, first)):
            if present in values and missing not in values:
                setting = _BY_PATH[missing]
                raise ConfigurationError(
                    f"{setting.argument} ({'/'.join(setting.env)})",
                    "(not set)",
                    f"a value, since {origins[present]} is set: {why}",
                )


def _source(
    setting: Setting,
    given: Mapping[str, Any],
    env: Mapping[str, str],
    from_file: Mapping[str, Any],
    file_path: object,
) -> tuple[str | None, object]:
    if setting.path in given:
        return setting.argument, given[setting.path]
    for name in setting.env:
        raw = env.get(name)
        if raw is not None and raw.strip() != "":
            return name, raw
    if setting.path in from_file:
        return f"{setting.path} (in {file_path})", from_file[setting.path]
    return None, None
