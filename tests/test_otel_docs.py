"""The OTLP page's snippets, run as written (as tests/test_docs_run.py runs every page), really push.

tests/test_docs_run.py runs the page with no collector anywhere; here the variables of the page's
shell block point at a local OTLP/HTTP sink, which must receive the push at /v1/metrics with the token.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sybil import Document
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

from test_otlp_delivery import TOKEN, HttpCollector  # the same OTLP/HTTP endpoint the delivery tests use

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _run(page: Path) -> int:
    """Run the page's python blocks in order in one namespace, as tests/test_docs_run.py does; return how many."""
    document = Document.parse(str(page), PythonCodeBlockParser(), SkipParser())
    examples = list(document.examples())
    for example in examples:
        example.evaluate()
    return len(examples)


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpCollector]:
    """The variables of the page's shell block, pointing at a local sink (HTTP, base URL, a bearer token)."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "TRADETEL_", "DD_")):
            monkeypatch.delenv(key)
    server = HttpCollector()
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=" + TOKEN.replace(" ", "%20"))
    yield server
    server.close()


def test_otlp_page_snippets_push_to_the_base_endpoint(sink: HttpCollector) -> None:
    """The OTLP page's blocks run; the first one's shutdown pushes to <base URL>/v1/metrics with the header."""
    assert _run(DOCS / "backends" / "otlp.md") >= 2
    assert sink.posts, "the snippet's shutdown must push"
    assert {(path, headers.get("authorization")) for path, headers in sink.posts} == {("/v1/metrics", TOKEN)}
