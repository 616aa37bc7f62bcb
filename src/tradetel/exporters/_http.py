"""One request-handling function for the built-in server and the WSGI and ASGI mounts.

Each transport turns its request into ``(method, path, query, headers)``, calls :func:`respond` and
writes the :class:`Response` back as it is, so status codes, headers and bodies are the same
everywhere. Negotiation follows ``prometheus_client.exposition``: OpenMetrics 1.0 when ``Accept``
lists ``application/openmetrics-text`` (without a version, or version 1.x), text 0.0.4 otherwise;
gzip when ``Accept-Encoding`` lists ``gzip``; ``?name[]=`` keeps only the samples with those names.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs

from opentelemetry.sdk.metrics.export import MetricsData

from ._exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, render, render_openmetrics

__all__ = ["REASONS", "Response", "respond"]

Collect = Callable[[], MetricsData]
Source = Callable[[MetricsData], bytes]
Authorize = Callable[[str | None], bool]

_logger = logging.getLogger("tradetel")
_PLAIN = "text/plain; charset=utf-8"
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


@dataclass(frozen=True, slots=True)
class Response:
    """Status, headers and body; ``Content-Length`` is among the headers (a HEAD answer has an empty body)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def status_line(self) -> str:
        return f"{self.status} {REASONS.get(self.status, 'Error')}"


def plain(status: int, text: str, method: str = "GET", extra: tuple[tuple[str, str], ...] = ()) -> Response:
    """A short text answer (errors, refusals)."""
    body = text.encode()
    headers = (("Content-Type", _PLAIN), ("Content-Length", str(len(body))), *extra)
    return Response(status, headers, b"" if method == "HEAD" else body)


def _only_named(text: bytes, names: Collection[str] | None) -> bytes:
    """The families of ``text`` (format 0.0.4) reduced to the samples named in ``names``, comments kept with them."""
    if names is None or not text:
        return text
    out: list[str] = []
    comments: list[str] = []
    for line in text.decode("utf-8").splitlines(keepends=True):
        if line.startswith("#"):
            comments.append(line)
            continue
        end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=len(line))
        if line[:end] in names:
            out.extend(comments)
            comments = []
            out.append(line)
    return "".join(out).encode("utf-8")


def openmetrics_accepted(accept: str | None) -> bool:
    """Whether ``Accept`` asks for OpenMetrics 1.x, read as ``prometheus_client.exposition.choose_encoder`` does."""
    for accepted in (accept or "").split(","):
        media_type, *parameters = accepted.split(";")
        if media_type.strip() != "application/openmetrics-text":
            continue
        version = next((p.split("=", 1)[1].strip() for p in parameters if p.strip().startswith("version=")), None)
        if not version or version.split(".")[0] == "1":
            return True
    return False


def gzip_accepted(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` lists gzip (any quality), as ``prometheus_client.exposition.gzip_accepted``."""
    return any(part.split(";")[0].strip().lower() == "gzip" for part in (accept_encoding or "").split(","))


def respond(
    collect: Collect,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    *,
    expected_path: str | None = None,
    authorized: Authorize | None = None,
    sources: Sequence[Source] = (),
) -> Response:
    """The answer to one request; ``headers`` are keyed in lower case.

    Args:
        expected_path: the only path served (the built-in server); ``None`` serves every path (mounts).
        authorized: a check of the ``Authorization`` header; every request failing it gets ``401``.
        sources: more families in text format 0.0.4 (a ``prometheus_client`` registry). They have
            no OpenMetrics form, so with sources the answer is always text 0.0.4.
    """
    if authorized is not None and not authorized(headers.get("authorization")):
        challenge = (("WWW-Authenticate", 'Basic realm="tradetel", charset="UTF-8"'),)
        return plain(401, "authentication required\n", method, challenge)
    if expected_path is not None and path != expected_path:
        return plain(404, f"not found; metrics are at {expected_path}\n", method)
    if method not in ("GET", "HEAD"):
        return plain(405, "only GET and HEAD\n", method, (("Allow", "GET, HEAD"),))
    openmetrics = not sources and openmetrics_accepted(headers.get("accept"))
    listed = parse_qs(query).get("name[]") if query else None
    names = frozenset(listed) if listed else None
    try:
        data = collect()
        body = (render_openmetrics if openmetrics else render)(data, names=names)
        for source in sources:
            body += _only_named(source(data), names)
    except Exception:
        _logger.exception("tradetel: rendering the Prometheus exposition failed")
        return plain(500, "collection failed\n", method)
    content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
    out: tuple[tuple[str, str], ...] = (("Content-Type", content_type),)
    if gzip_accepted(headers.get("accept-encoding")):
        body = gzip.compress(body, compresslevel=6)
        out += (("Content-Encoding", "gzip"),)
    out += (("Content-Length", str(len(body))),)
    return Response(200, out, b"" if method == "HEAD" else body)
