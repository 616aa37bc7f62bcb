"""The snippets of docs/backends/otlp.md and of the OpenTelemetry section of docs/configuration.md run as written."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


def _run(page: Path, blocks: list[str]) -> None:
    namespace: dict[str, object] = {"__name__": "otel_docs"}
    for index, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page.name}[block {index}]", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"block {index} of {page.name} failed:\n{block}") from error


class Sink:
    """An OTLP/HTTP endpoint on 127.0.0.1 that answers 200 and records each POST's path and headers."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str]]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    """The variables of the page's shell block, pointing at a local sink (HTTP, base URL, a bearer token)."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "TRADETEL_", "DD_")):
            monkeypatch.delenv(key)
    server = Sink()
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20t0ken")
    yield server
    server.close()


def test_otlp_page_snippets_run_and_push(sink: Sink) -> None:
    """Every python block of the OTLP page runs; the first one's shutdown pushes to <base URL>/v1/metrics."""
    page = DOCS / "backends" / "otlp.md"
    blocks = _blocks(page)
    assert len(blocks) >= 2
    _run(page, blocks)
    assert sink.posts, "the snippet's shutdown must push"
    assert {(path, headers.get("authorization")) for path, headers in sink.posts} == {("/v1/metrics", "Bearer t0ken")}


def test_configuration_page_snippets_run() -> None:
    """Every python block of the configuration reference runs and its assertions hold."""
    page = DOCS / "configuration.md"
    blocks = _blocks(page)
    assert blocks
    _run(page, blocks)
