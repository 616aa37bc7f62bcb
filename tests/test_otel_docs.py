"""The OTLP page's snippets, run as written (as tests/test_docs_run.py runs every page), really push.

tests/test_docs_run.py runs the page with no collector anywhere; here the variables of the page's
shell block point at a local OTLP/HTTP sink, which must receive the push at /v1/metrics with the token.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sybil import Document
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _run(page: Path) -> int:
    """Run the page's python blocks in order in one namespace, as tests/test_docs_run.py does; return how many."""
    document = Document.parse(str(page), PythonCodeBlockParser(), SkipParser())
    examples = list(document.examples())
    for example in examples:
        example.evaluate()
    return len(examples)


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


def test_otlp_page_snippets_push_to_the_base_endpoint(sink: Sink) -> None:
    """The OTLP page's blocks run; the first one's shutdown pushes to <base URL>/v1/metrics with the header."""
    assert _run(DOCS / "backends" / "otlp.md") >= 2
    assert sink.posts, "the snippet's shutdown must push"
    assert {(path, headers.get("authorization")) for path, headers in sink.posts} == {("/v1/metrics", "Bearer t0ken")}
