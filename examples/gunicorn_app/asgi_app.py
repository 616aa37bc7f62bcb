"""The same app as ``wsgi_app.py`` on FastAPI, for gunicorn with ``uvicorn_worker.UvicornWorker``.

``GET /`` answers ``<pid> <worker index>``. Settings come from the environment, as for ``wsgi_app.py``.
"""

from __future__ import annotations

import os
import time

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

import tradetel
from tradetel.gunicorn import worker_index

tel = tradetel.configure()
app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
async def root() -> str:
    started = time.perf_counter()
    labels = {"method": "GET", "route": "/", "status_class": "2xx"}
    tel.http.server.requests.add(1, **labels)
    tel.http.server.request.duration.record(time.perf_counter() - started, **labels)
    return f"{os.getpid()} {worker_index()}\n"
