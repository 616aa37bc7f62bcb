"""What ``tradetel config`` and ``tradetel check`` report: effective settings with their sources, and checks.

Secrets never leave this module: OTLP header values, the basic-auth
password, a password inside a URL and a label policy's ``hash_key`` are
replaced by ``<redacted>`` before anything is rendered.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import logging
import os
import re
import socket
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .config import SETTINGS, Secret, Setting, Settings, _redact
from .errors import ConfigurationError, TradetelError

REDACTED = "<redacted>"

# --- tradetel config ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingRow:
    """One effective setting: its value (secrets redacted) and where it came from."""

    path: str
    value: Any
    source: str  # argument, env, file or default
    origin: str | None  # the argument name, the variable, or the file key
    file: str | None
    env: tuple[str, ...]


def _lookup(settings: Settings, path: str) -> Any:
    section, _, key = path.partition(".")
    value = getattr(settings, section)
    return getattr(value, key) if key else value


def _redact_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.password is None:
        return value
    host = parts.hostname or ""
    netloc = f"{parts.username}:{REDACTED}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _display(setting: Setting | None, value: Any) -> Any:
    """A JSON-able value, with everything secret replaced by ``<redacted>``."""
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, Mapping):
        if setting is not None and setting.secret:
            return dict.fromkeys(value, REDACTED)
        return _redact(dict(value))
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str) and setting is not None and setting.secret:
        return REDACTED
    if isinstance(value, str) and "://" in value:
        return _redact_url(value)
    return value


def _classify(setting_path: str, setting: Setting | None, origin: str | None) -> tuple[str, str | None, str | None]:
    if origin is None:
        return "default", None, None
    file_match = re.fullmatch(r"(.+) \(in (.+)\)", origin)
    if file_match:
        return "file", file_match.group(1), file_match.group(2)
    if origin == setting_path or (setting is not None and origin == setting.argument):
        return "argument", origin, None
    return "env", origin, None


def setting_rows(settings: Settings) -> list[SettingRow]:
    """Every setting in documentation order, then ``instruments``, with its source."""
    rows = []
    for setting in SETTINGS:
        value = _lookup(settings, setting.path)
        if setting.path == "otlp.endpoint" and value is None:
            value = settings.otlp.resolved_endpoint
        origin = settings.origins.get(setting.path)
        source, name, file = _classify(setting.path, setting, origin)
        rows.append(SettingRow(setting.path, _display(setting, value), source, name, file, setting.env))
    source, name, file = _classify("instruments", None, settings.origins.get("instruments"))
    rows.append(SettingRow("instruments", _display(None, settings.instruments), source, name, file, ()))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True) if value else "{}"
    return str(value)


def _source_text(row: SettingRow) -> str:
    if row.source == "file":
        return f"file {row.file}: {row.origin}"
    if row.source == "default":
        return "default"
    return f"{row.source} {row.origin}"


def settings_table(settings: Settings) -> str:
    """``tradetel config``: one line per setting, value and source, aligned."""
    rows = [("setting", "value", "source")]
    rows += [(row.path, _cell(row.value), _source_text(row)) for row in setting_rows(settings)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{a.ljust(widths[0])}  {b.ljust(widths[1])}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def settings_json(settings: Settings) -> str:
    """``tradetel config --format json``."""
    rows = [
        {
            "setting": row.path,
            "value": row.value,
            "source": row.source,
            "origin": row.origin,
            "file": row.file,
            "env": list(row.env),
        }
        for row in setting_rows(settings)
    ]
    return json.dumps({"config_file": settings.config_file, "settings": rows}, indent=2, default=str)


# --- tradetel check -------------------------------------------------------------------------------

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check: ``ok``, ``warn`` or ``FAIL``, what was checked and what was found."""

    status: str
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<10}  {self.detail}"


def check_catalog(settings: Settings) -> Check:
    """Build the pipeline as ``configure()`` would, without backends: catalog, overrides, label policies, views."""
    from .telemetry import Telemetry

    try:
        telemetry = Telemetry(replace(settings, handle_sigterm=False, exporters=()))
    except TradetelError as exc:
        return Check(FAIL, "catalog", str(exc))
    try:
        count = len(telemetry.catalog)
    finally:
        telemetry.shutdown(timeout=1.0)
    overrides = ", ".join(sorted(settings.instruments)) or "none"
    return Check(OK, "catalog", f"{count} instruments under {settings.namespace!r}; overrides: {overrides}")


def check_prometheus(settings: Settings) -> Check:
    """Bind the endpoint exactly as ``configure()`` would, and release it; on a taken port, say who holds it."""
    from .exporters.prometheus import PrometheusServer

    prometheus = settings.prometheus
    where = f"{prometheus.host}:{prometheus.port}"
    try:
        server = PrometheusServer.from_settings(_nothing, prometheus)
    except ConfigurationError as exc:
        if _bind_errno(prometheus.host, prometheus.port) == errno.EADDRINUSE:
            holder = _port_holder(prometheus.port)
            served = _who_serves(prometheus.host, prometheus.port, prometheus.path)
            found = "; ".join(part for part in (served, holder) if part) or "by a process this user cannot see"
            return Check(FAIL, "prometheus", f"{where} is already in use: {found}")
        return Check(FAIL, "prometheus", str(exc))
    server.close()
    if prometheus.port == 0:
        return Check(OK, "prometheus", f"{prometheus.host}: port 0, a free port is picked at start")
    scheme = "https" if server.tls else "http"
    unprotected = [what for what, on in (("TLS", server.tls), ("basic auth", prometheus.basic_auth_username)) if not on]
    if unprotected and not _loopback(prometheus.host):
        return Check(
            WARN,
            "prometheus",
            f"{where} is free ({scheme}); it serves beyond this machine without {' or '.join(unprotected)}",
        )
    return Check(OK, "prometheus", f"{where} is free ({scheme}, bound and released)")


def _loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def _nothing(timeout: float = 10.0) -> Any:
    from opentelemetry.sdk.metrics.export import MetricsData

    return MetricsData(resource_metrics=[])


def _bind_errno(host: str, port: int) -> int | None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the endpoint's server binds
        try:
            sock.bind(address)
        except OSError as exc:
            return exc.errno
    return None


def _port_holder(port: int) -> str | None:
    """``pid N (command)`` of the process listening on TCP ``port``, when /proc shows it to this user."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as file:
                next(file)
                for line in file:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    if not inodes:
        return None
    for pid in filter(str.isdigit, _listdir("/proc")):
        for fd in _listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return f"pid {pid} ({_command(pid)})"
    return None


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _command(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            words = file.read().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(word.decode(errors="replace") for word in words if word)
    return text if len(text) <= 120 else text[:117] + "..."


def _who_serves(host: str, port: int, path: str) -> str | None:
    """``a tradetel endpoint (service.name=...)`` when what listens there answers like one."""
    url_host = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{url_host}:{port}{path}", timeout=2) as response:
            body = response.read(1 << 20).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return f"an HTTP server answering {exc.code} on {path}"
    except (OSError, ValueError):
        return None
    if 'telemetry_distro_name="tradetel"' not in body:
        return "an HTTP server (not a tradetel endpoint)"
    service = re.search(r'target_info\{[^}]*service_name="([^"]*)"', body)
    return f"a tradetel endpoint (service.name={service.group(1) if service else '?'})"


def _endpoint_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "localhost", port


def check_otlp(settings: Settings) -> Check:
    """A TCP connect to the collector, then one empty export through the exporter ``configure()`` would build."""
    otlp = settings.otlp
    url = _redact_url(otlp.resolved_endpoint)
    host, port = _endpoint_address(otlp.resolved_endpoint)
    timeout = min(otlp.timeout, 5.0)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror as exc:
        return Check(FAIL, "otlp", f"{otlp.protocol} {url}: {host} does not resolve ({exc.strerror})")
    except TimeoutError:
        return Check(FAIL, "otlp", f"{otlp.protocol} {url}: no TCP answer from {host}:{port} within {timeout:g} s")
    except OSError as exc:
        return Check(FAIL, "otlp", f"{otlp.protocol} {url}: TCP connect to {host}:{port} failed ({exc.strerror})")
    result, messages = _empty_export(replace(otlp, timeout=timeout))
    if result:
        return Check(OK, "otlp", f"{otlp.protocol} {url}: connected; an empty export was accepted")
    why = _scrub(messages[-1], otlp) if messages else "the exporter reported a failure"
    return Check(FAIL, "otlp", f"{otlp.protocol} {url}: connected, but an empty export failed: {why}")


def _scrub(message: str, otlp: Any) -> str:
    """The SDK's message without a URL password or a header value, should it quote either."""
    message = re.sub(r"://([^/:@\s]*):[^/@\s]*@", rf"://\1:{REDACTED}@", message)
    for value in otlp.headers.values():
        if value:
            message = message.replace(value, REDACTED)
    return message


def _empty_export(otlp: Any) -> tuple[bool, list[str]]:
    from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

    from .exporters.otlp import _sdk_exporter

    with _captured("opentelemetry.exporter.otlp") as messages:
        exporter, _ = _sdk_exporter(otlp)  # the same SDK exporter the bot pushes through
        try:
            result = exporter.export(MetricsData(resource_metrics=[]), timeout_millis=otlp.timeout * 1000)
        finally:
            exporter.shutdown(timeout_millis=1000)
    return result is MetricExportResult.SUCCESS, messages


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage().splitlines()[0][:300])


@contextlib.contextmanager
def _captured(logger_name: str) -> Iterator[list[str]]:
    """The SDK exporter's warnings, kept for the check's line instead of printed as log records."""
    logger = logging.getLogger(logger_name)
    handler = _Collect()
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def check_dogstatsd(settings: Settings) -> Check:
    """A Unix socket: that it exists and accepts a connection. UDP: that the host resolves and refuses nothing."""
    url = settings.dogstatsd.url
    parts = urlsplit(url)
    if parts.scheme == "udp":
        return _check_udp(url, parts.hostname or "localhost", parts.port or 8125)
    return _check_unix(url, parts.scheme, parts.path)


def _check_udp(url: str, host: str, port: int) -> Check:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        return Check(FAIL, "dogstatsd", f"{url}: {host} does not resolve ({exc.strerror})")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.settimeout(0.3)
        try:
            sock.connect(address)
            sock.send(b"")  # an empty datagram: a DogStatsD server reads no metric from it
            sock.recv(1)
        except ConnectionRefusedError:
            return Check(FAIL, "dogstatsd", f"{url}: nothing listens on {address[0]}:{port} (port unreachable)")
        except TimeoutError:
            pass
        except OSError as exc:
            return Check(FAIL, "dogstatsd", f"{url}: cannot send to {address[0]}:{port} ({exc.strerror})")
    return Check(
        OK,
        "dogstatsd",
        f"{url}: {host} resolves to {address[0]}; no 'port unreachable' came back "
        "(UDP cannot confirm that an agent reads the datagrams)",
    )


def _check_unix(url: str, scheme: str, path: str) -> Check:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return Check(FAIL, "dogstatsd", f"{url}: {exc.strerror}")
    if not stat.S_ISSOCK(mode):
        return Check(FAIL, "dogstatsd", f"{url}: {path} is not a socket")
    kinds = {"unixgram": [socket.SOCK_DGRAM], "unixstream": [socket.SOCK_STREAM]}.get(
        scheme, [socket.SOCK_DGRAM, socket.SOCK_STREAM]
    )
    for kind in kinds:
        with socket.socket(socket.AF_UNIX, kind) as sock:
            sock.settimeout(2.0)
            try:
                sock.connect(path)
            except OSError as exc:
                if exc.errno == errno.EPROTOTYPE and kind != kinds[-1]:
                    continue  # a stream socket: the client tries that kind next, as datadogpy does
                return Check(FAIL, "dogstatsd", f"{url}: connect failed ({exc.strerror})")
        name = "datagram" if kind == socket.SOCK_DGRAM else "stream"
        return Check(OK, "dogstatsd", f"{url}: the socket accepts a {name} connection")
    return Check(FAIL, "dogstatsd", f"{url}: no socket kind accepted")  # pragma: no cover - loop always returns


def run_checks(settings: Settings) -> list[Check]:
    """Every check that applies to ``settings``: the catalog, then each enabled backend."""
    checks = [check_catalog(settings)]
    if "prometheus" in settings.exporters:
        checks.append(check_prometheus(settings))
    if "otlp" in settings.exporters:
        checks.append(check_otlp(settings))
    if "dogstatsd" in settings.exporters:
        checks.append(check_dogstatsd(settings))
    return checks
