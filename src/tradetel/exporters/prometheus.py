"""Prometheus text exposition, served from tradetel's shared collection.

The exposition is written directly from OpenTelemetry ``MetricsData``
(text format 0.0.4), following the OpenTelemetry → Prometheus compatibility
rules: dots become underscores, units become suffixes (``_seconds``),
monotonic sums end in ``_total``, resource attributes go to ``target_info``.
Unlike the stock exporter it labels only the overflow series with
``otel_metric_overflow="true"`` instead of adding an empty label to every
series of the metric.

The endpoint binds 127.0.0.1 unless told otherwise, and can serve HTTPS
(``TRADETEL_PROMETHEUS_TLS_CERT``/``_KEY``) and require HTTP basic auth
(``TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME``/``_PASSWORD``), compared in
constant time; see ``docs/reliability.md``. Mounted apps (:func:`wsgi_app`,
:func:`asgi_app`) are protected by the app they are mounted in.

Example::

    tel = tradetel.configure(exporters="prometheus")   # serves 127.0.0.1:9464/metrics
    app.mount("/metrics", tradetel.exporters.prometheus.asgi_app(tel))
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import logging
import math
import re
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import accumulate
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricsData,
    NumberDataPoint,
    Sum,
)

from ..catalog import Kind, prometheus_name
from ..config import PrometheusSettings
from ..errors import ConfigurationError

__all__ = ["CONTENT_TYPE", "PrometheusServer", "asgi_app", "render", "wsgi_app"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_logger = logging.getLogger("tradetel")
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")
Collect = Callable[[], MetricsData]
Source = Callable[[MetricsData], bytes]
"""More families for the exposition, given the collection being served (see ``prometheus_client.RegistrySource``)."""


def _label_name(key: str) -> str:
    name = _INVALID_NAME_CHARS.sub("_", key)
    if not name or name[0].isdigit():
        name = "_" + name
    return name


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + ",".join(_label_text(v) for v in value) + "]"
    return str(value)


_NAMES: dict[str, str] = {}


def _labels(attributes: Any) -> str:
    if not attributes:
        return ""
    parts = []
    for key, value in sorted(attributes.items()):
        name = _NAMES.get(key)
        if name is None:
            if len(_NAMES) >= 4096:
                _NAMES.clear()
            name = _NAMES[key] = _label_name(key)
        text = value if type(value) is str else _label_text(value)
        if "\\" in text or "\n" in text or '"' in text:
            text = _escape_value(text)
        parts.append(f'{name}="{text}"')
    return ",".join(parts)


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _sample(name: str, labels: str, value: float | int) -> str:
    return f"{name}{{{labels}}} {_number(value)}\n" if labels else f"{name} {_number(value)}\n"


def _kind(data: Any) -> Kind | None:
    if isinstance(data, Sum):
        return Kind.COUNTER if data.is_monotonic else Kind.UP_DOWN_COUNTER
    if isinstance(data, Gauge):
        return Kind.GAUGE
    if isinstance(data, Histogram):
        return Kind.HISTOGRAM
    return None  # exponential histograms are not exposed in text format 0.0.4


_PROM_TYPE = {Kind.COUNTER: "counter", Kind.UP_DOWN_COUNTER: "gauge", Kind.GAUGE: "gauge", Kind.HISTOGRAM: "histogram"}


def _target_info(data: MetricsData) -> Iterator[str]:
    for resource_metrics in data.resource_metrics[:1]:
        attributes = resource_metrics.resource.attributes
        if attributes:
            yield "# HELP target_info Target metadata\n# TYPE target_info gauge\n"
            yield _sample("target_info", _labels(attributes), 1)


def render(data: MetricsData, *, target_info: bool = True) -> bytes:
    """Render ``data`` (cumulative) as Prometheus text exposition format 0.0.4."""
    families: dict[str, tuple[Kind, str, list[str]]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = _kind(metric.data)
                if kind is None:
                    continue
                name = prometheus_name(metric.name, kind, metric.unit or "")
                family = families.get(name)
                if family is None:
                    family = families[name] = (kind, metric.description or metric.name, [])
                elif family[0] is not kind:
                    _logger.warning("tradetel: metric %s has two kinds; the second is not exposed", name)
                    continue
                lines = family[2]
                if kind is Kind.HISTOGRAM:
                    bounds: Any = None
                    tails: tuple[str, ...] = ()
                    for point in metric.data.data_points:
                        assert isinstance(point, HistogramDataPoint)
                        if point.explicit_bounds is not bounds:  # the SDK shares one tuple per instrument
                            bounds = point.explicit_bounds
                            tails = _bucket_tails(bounds)
                        _histogram_lines(name, point, lines, tails)
                else:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        lines.append(_sample(name, _labels(point.attributes), point.value))
    out: list[str] = list(_target_info(data)) if target_info else []
    for name, (kind, description, lines) in families.items():
        out.append(f"# HELP {name} {_escape_help(description)}\n# TYPE {name} {_PROM_TYPE[kind]}\n")
        out.extend(lines)
    return "".join(out).encode("utf-8")


_TAILS: dict[tuple[float, ...], tuple[str, ...]] = {}


def _bucket_tails(bounds: Sequence[float]) -> tuple[str, ...]:
    """``le="<bound>"} `` for each bound, rendered once per set of boundaries instead of once per line."""
    key = tuple(bounds)
    tails = _TAILS.get(key)
    if tails is None:
        if len(_TAILS) >= 1024:
            _TAILS.clear()
        tails = _TAILS[key] = tuple(f'le="{_number(float(bound))}"}} ' for bound in key)
    return tails


def _histogram_lines(name: str, point: HistogramDataPoint, lines: list[str], tails: tuple[str, ...]) -> None:
    labels = _labels(point.attributes)
    head = f"{name}_bucket{{{labels}," if labels else f"{name}_bucket{{"
    # One string per series: the bucket lines share the head, the bound texts are precomputed.
    cumulative = accumulate(point.bucket_counts)
    buckets = [f"{head}{tail}{count}\n" for tail, count in zip(tails, cumulative, strict=False)]
    buckets.append(f'{head}le="+Inf"}} {point.count}\n')
    buckets.append(_sample(name + "_sum", labels, point.sum))
    buckets.append(_sample(name + "_count", labels, point.count))
    lines.append("".join(buckets))


class PrometheusServer:
    """A small threaded HTTP(S) server answering ``GET <path>`` with the exposition.

    It binds at construction, so a taken port fails :func:`tradetel.configure`
    with a :class:`~tradetel.errors.ConfigurationError` naming host, port and
    setting, and serves from a daemon thread until :meth:`close`.

    Args:
        tls_cert, tls_key: PEM files; with both, the endpoint speaks only HTTPS (TLS 1.2 or later).
        basic_auth: ``(user, password)``; every request without them gets ``401``.

    Example::

        server = PrometheusServer(tel.collect, port=0, basic_auth=("prometheus", password))
    """

    def __init__(
        self,
        collect: Collect,
        host: str = "127.0.0.1",
        port: int = 9464,
        path: str = "/metrics",
        *,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        sources: Sequence[Source] = (),
    ) -> None:
        context = _tls_context(tls_cert, tls_key) if tls_cert or tls_key else None
        authorized = _basic_auth(*basic_auth) if basic_auth is not None else None
        handler = _handler_class(collect, path, authorized, tuple(sources))
        try:
            self._server = _Server((host, port), handler)
        except OSError as exc:
            accepted = "a free port (set OTEL_EXPORTER_PROMETHEUS_PORT, or 0 for any free port)"
            if exc.errno == errno.EADDRINUSE:
                from ..otel_global import port_taken_hint

                accepted += "; " + port_taken_hint(port)
            elif exc.errno != errno.EACCES:
                accepted = f"an address this machine can bind ({exc.strerror})"
            raise ConfigurationError(
                "OTEL_EXPORTER_PROMETHEUS_HOST/OTEL_EXPORTER_PROMETHEUS_PORT", f"{host}:{port}", accepted
            ) from None
        if context is not None:
            # The handshake runs in the request's thread, on its first read: a client that never
            # completes it holds one thread until the handler's timeout, never the accept loop.
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.tls = context is not None
        self._server.daemon_threads = True
        self.path = path
        self._thread = threading.Thread(target=self._server.serve_forever, name="tradetel-prometheus", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(
        cls, collect: Collect, settings: PrometheusSettings, sources: Sequence[Source] = ()
    ) -> PrometheusServer:
        """The server :func:`tradetel.configure` starts for ``settings``; ``sources`` add families after tradetel's."""
        password = settings.basic_auth_password
        username = settings.basic_auth_username
        return cls(
            collect,
            settings.host,
            settings.port,
            settings.path,
            tls_cert=settings.tls_cert,
            tls_key=settings.tls_key,
            basic_auth=(username, password.reveal()) if username and password else None,
            sources=sources,
        )

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{self.path}"

    def __repr__(self) -> str:
        return f"<PrometheusServer {self.url}>"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def close_in_child(self) -> None:
        """After ``os.fork``, in the child: close this process's copy of the listening socket.

        The parent keeps serving. ``close()`` would wait forever here: the serving thread exists only
        in the parent.
        """
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets, times out or fails the TLS handshake is its own problem, not a
        # traceback on the bot's stderr.
        _logger.debug("tradetel: a /metrics request from %s failed", client_address, exc_info=True)


def _no_key_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's password.
    raise ConfigurationError(
        "TRADETEL_PROMETHEUS_TLS_KEY", "an encrypted key", "an unencrypted PEM private key (no password prompt)"
    )


def _tls_context(cert: str | None, key: str | None) -> ssl.SSLContext:
    if not cert or not key:
        missing = "TRADETEL_PROMETHEUS_TLS_KEY" if cert else "TRADETEL_PROMETHEUS_TLS_CERT"
        raise ConfigurationError(missing, None, "a PEM file: TLS needs both the certificate and its key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key, password=_no_key_password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            "TRADETEL_PROMETHEUS_TLS_CERT/TRADETEL_PROMETHEUS_TLS_KEY",
            f"{cert}, {key}",
            f"a readable PEM certificate and its matching private key ({exc.strerror or exc})",
        ) from None
    return context


def _basic_auth(username: str, password: str) -> Callable[[str | None], bool]:
    """A check of an ``Authorization`` header against the credentials, in constant time."""
    # Digests of equal length: compare_digest's time then tells nothing, not even the length.
    expected = hashlib.sha256(f"{username}:{password}".encode()).digest()

    def authorized(header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
        matches = hmac.compare_digest(hashlib.sha256(given).digest(), expected)
        return matches and scheme.lower() == "basic"

    return authorized


def _exposition(collect: Collect, sources: Sequence[Source] = ()) -> tuple[int, str, bytes]:
    """Status, content type and body of one scrape; a failing collection is a 500, logged, never raised."""
    try:
        data = collect()
        return 200, CONTENT_TYPE, render(data) + b"".join(source(data) for source in sources)
    except Exception:
        _logger.exception("tradetel: rendering the Prometheus exposition failed")
        return 500, "text/plain; charset=utf-8", b"collection failed\n"


def _method_allowed(method: str) -> bool:
    return method in ("GET", "HEAD")


_NOT_ALLOWED = (405, "text/plain; charset=utf-8", b"only GET and HEAD\n")
_REASONS = {200: "OK", 405: "Method Not Allowed", 500: "Internal Server Error"}
_UNAUTHORIZED = b"authentication required\n"


def _handler_class(
    collect: Collect, path: str, authorized: Callable[[str | None], bool] | None = None, sources: Sequence[Source] = ()
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "tradetel"
        timeout = 30  # seconds a client may take to send its request (and, over TLS, to shake hands)

        def _answer(self, body_wanted: bool) -> None:
            if authorized is not None and not authorized(self.headers.get("Authorization")):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="tradetel", charset="UTF-8"')
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(_UNAUTHORIZED)))
                self.end_headers()
                if body_wanted:
                    self.wfile.write(_UNAUTHORIZED)
                return
            if self.path.split("?", 1)[0] != path:
                self.send_error(404, "not found; metrics are at " + path)
                return
            status, content_type, body = _exposition(collect, sources)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body_wanted:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(True)

        def do_HEAD(self) -> None:
            self._answer(False)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
            pass

    return Handler


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(telemetry: Any) -> WsgiApp:
    """A WSGI app answering every GET with the exposition of ``telemetry``; mount it at ``/metrics``.

    Example (any WSGI framework; here a plain dispatcher)::

        metrics = wsgi_app(tel)

        def app(environ, start_response):
            if environ["PATH_INFO"] == "/metrics":
                return metrics(environ, start_response)
            return flask_app(environ, start_response)
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        status, content_type, body = _exposition(telemetry.collect) if _method_allowed(method) else _NOT_ALLOWED
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response(f"{status} {_REASONS[status]}", headers)
        return [b""] if method == "HEAD" else [body]

    return app


def asgi_app(telemetry: Any) -> Callable[..., Any]:
    """An ASGI app answering every GET with the exposition of ``telemetry``; collection runs in a worker thread.

    It is an object, not a function, so that frameworks which treat plain functions as request
    handlers (Starlette's ``Route``) see an ASGI app.

    Example (Starlette or FastAPI)::

        app = Starlette(routes=[Route("/metrics", tradetel.exporters.prometheus.asgi_app(tel))])
    """
    return _AsgiExposition(telemetry)


class _AsgiExposition:
    __slots__ = ("_telemetry",)

    def __init__(self, telemetry: Any) -> None:
        self._telemetry = telemetry

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        import asyncio

        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        if _method_allowed(method):
            status, content_type, body = await asyncio.to_thread(_exposition, self._telemetry.collect)
        else:
            status, content_type, body = _NOT_ALLOWED
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


async def _lifespan(receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
