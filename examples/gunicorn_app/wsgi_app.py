"""A WSGI app that counts and times every request with tradetel (one worker's share of a platform API).

``GET /`` answers ``<pid> <worker index>``, so a client can tell which worker process served it.
Settings come from the environment (``OTEL_METRICS_EXPORTER``, ``OTEL_EXPORTER_OTLP_*``, ``OTEL_SERVICE_NAME``):
the app configures at import, in each worker, or once in the master with ``--preload``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import tradetel
from tradetel.gunicorn import worker_index

tel = tradetel.configure()

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    started = time.perf_counter()
    body = f"{os.getpid()} {worker_index()}\n".encode()
    labels = {"method": environ["REQUEST_METHOD"], "route": "/", "status_class": "2xx"}
    tel.http.server.requests.add(1, **labels)
    tel.http.server.request.duration.record(time.perf_counter() - started, **labels)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
