"""Prometheus exposition, served from tradetel's shared collection.

The exposition is written directly from OpenTelemetry ``MetricsData`` (text format 0.0.4, or
OpenMetrics 1.0 when the scraper asks for it), following the OpenTelemetry → Prometheus
compatibility rules: dots become underscores, units become suffixes (``_seconds``), monotonic sums
end in ``_total``, resource attributes go to ``target_info``, keys that collide once sanitised are
merged (values joined with ``;``). Unlike the stock exporter it labels only the overflow series with
``otel_metric_overflow="true"`` instead of adding an empty label to every series of the metric.

The endpoint binds 127.0.0.1 unless told otherwise, runs on a fixed budget of threads, connections
and time (:data:`MAX_CONNECTIONS`, :data:`WORKERS`, :data:`HEAD_TIMEOUT`, :data:`WRITE_TIMEOUT`),
and can serve HTTPS (``TRADETEL_PROMETHEUS_TLS_CERT``/``_KEY``) and require HTTP basic auth
(``TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME``/``_PASSWORD``), compared in constant time; see
``docs/reliability.md``. The built-in server and the mounted apps (:func:`wsgi_app`,
:func:`asgi_app`) share one request-handling function; mounts are protected by the app they are
mounted in.

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
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData

from ..config import PrometheusSettings
from ..errors import ConfigurationError
from ._exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, render, render_openmetrics
from ._exposition import _kind as _kind  # the private helpers the prometheus_client bridge shares
from ._exposition import _label_mapping as _label_mapping
from ._exposition import _label_name as _label_name
from ._exposition import _label_text as _label_text
from ._exposition import _number as _number
from ._http import Response, Source, respond
from ._server import BoundedServer

__all__ = [
    "CONTENT_TYPE",
    "MAX_CONNECTIONS",
    "OPENMETRICS_CONTENT_TYPE",
    "PrometheusServer",
    "asgi_app",
    "render",
    "render_openmetrics",
    "wsgi_app",
]

CONTENT_TYPE = TEXT_CONTENT_TYPE
MAX_CONNECTIONS = 128
"""Open connections the built-in server keeps at most (well under the usual limit of 1,024 descriptors)."""
WORKERS = 2
"""Threads that collect and render; with the event-loop thread, the server never runs more than three."""
HEAD_TIMEOUT = 5.0
"""Seconds a client has for the TLS handshake, the request line and the headers, together."""
WRITE_TIMEOUT = 30.0
"""Seconds a client has to read the answer."""

_logger = logging.getLogger("tradetel")
Collect = Callable[[], MetricsData]


class PrometheusServer:
    """A small HTTP(S) server answering ``GET <path>`` with the exposition, on a fixed budget.

    It binds at construction, so a taken port fails :func:`tradetel.configure` with a
    :class:`~tradetel.errors.ConfigurationError` naming host, port and setting, and serves until
    :meth:`close`. Stalled or slow clients cannot starve the bot: at most ``max_connections`` are open
    (the oldest one still sending its request is closed when another arrives), ``workers`` threads
    render, and a client has ``head_timeout`` seconds for its handshake and request head.

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
        max_connections: int = MAX_CONNECTIONS,
        workers: int = WORKERS,
        head_timeout: float = HEAD_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        sources: Sequence[Source] = (),
    ) -> None:
        context = _tls_context(tls_cert, tls_key) if tls_cert or tls_key else None
        authorized = _basic_auth(*basic_auth) if basic_auth is not None else None
        sock = _listen(host, port)
        extra = tuple(sources)

        def handle(method: str, request_path: str, query: str, headers: dict[str, str]) -> Response:
            return respond(
                collect, method, request_path, query, headers, expected_path=path, authorized=authorized, sources=extra
            )

        self._server = BoundedServer(
            sock,
            handle,
            tls=context,
            max_connections=max_connections,
            workers=workers,
            head_timeout=head_timeout,
            write_timeout=write_timeout,
        )
        self._address = sock.getsockname()
        self.tls = context is not None
        self.path = path
        if context is None and authorized is None and not _loopback(self.host):
            _logger.warning(
                "tradetel: the Prometheus endpoint listens on %s without TLS or basic auth: anyone who can "
                "reach it reads every metric. Set TRADETEL_PROMETHEUS_TLS_CERT/_KEY and "
                "TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME/_PASSWORD, or bind 127.0.0.1",
                self.host,
            )

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
        return str(self._address[0])

    @property
    def port(self) -> int:
        return int(self._address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{self.path}"

    @property
    def open_connections(self) -> int:
        """Connections open right now (at most ``max_connections``)."""
        return self._server.open_connections

    def __repr__(self) -> str:
        return f"<PrometheusServer {self.url}>"

    def close(self) -> None:
        self._server.close()

    def close_in_child(self) -> None:
        """After ``os.fork``, in the child: close this process's copy of the listening socket.

        The parent keeps serving. ``close()`` would wait forever here: the serving thread exists only
        in the parent.
        """
        self._server.close_in_child()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
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


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


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


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(telemetry: Any) -> WsgiApp:
    """A WSGI app answering every GET with the exposition of ``telemetry``; mount it at ``/metrics``.

    It negotiates like the built-in server (OpenMetrics, gzip, ``?name[]=``) and answers other methods
    ``405``, with the same headers.

    Example (any WSGI framework; here a plain dispatcher)::

        metrics = wsgi_app(tel)

        def app(environ, start_response):
            if environ["PATH_INFO"] == "/metrics":
                return metrics(environ, start_response)
            return flask_app(environ, start_response)
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            name: environ[variable]
            for name, variable in _WSGI_HEADERS.items()
            if isinstance(environ.get(variable), str)
        }
        response = respond(
            telemetry.collect,
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            headers,
        )
        start_response(response.status_line, list(response.headers))
        return [response.body]

    return app


_WSGI_HEADERS = {
    "accept": "HTTP_ACCEPT",
    "accept-encoding": "HTTP_ACCEPT_ENCODING",
    "authorization": "HTTP_AUTHORIZATION",
}


def asgi_app(telemetry: Any) -> Callable[..., Any]:
    """An ASGI app answering every GET with the exposition of ``telemetry``; collection runs in a worker thread.

    It negotiates like the built-in server (OpenMetrics, gzip, ``?name[]=``). It is an object, not a
    function, so that frameworks which treat plain functions as request handlers (Starlette's
    ``Route``) see an ASGI app.

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
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        method = scope.get("method", "GET")
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("path", "")
        collect = self._telemetry.collect
        if method in ("GET", "HEAD"):  # the collection may take a while: off the event loop
            response = await asyncio.to_thread(respond, collect, method, path, query, headers)
        else:
            response = respond(collect, method, path, query, headers)
        encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": encoded})
        await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
