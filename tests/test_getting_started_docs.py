"""The getting-started page: its blocks run in order (tests/test_docs_run.py) and the test it shows passes.

The page ends with a test function for the reader's own suite; the page runner only defines it. Here the
page is run the same way (Sybil, one namespace, in order) and then that function is called.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sybil import Document
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

import tradetel
from test_docs_run import ENVIRONMENT, ROOT, _shutdown_all

PAGE = ROOT / "docs" / "getting-started.md"


def test_the_pages_own_test_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the page's blocks run in order, the test function it shows runs and passes; the page shuts down."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setitem(os.environ, name, value)
    monkeypatch.chdir(ROOT)
    document = Document.parse(str(PAGE), PythonCodeBlockParser(), SkipParser())
    try:
        examples = list(document.examples())
        assert len(examples) >= 5
        for example in examples:
            example.evaluate()
        tests = [value for name, value in document.namespace.items() if name.startswith("test_") and callable(value)]
        assert len(tests) == 1
        tests[0]()
        tel = document.namespace["tel"]
        assert isinstance(tel, tradetel.Telemetry)
        assert tel.closed  # the page ends by shutting down what it configured
    finally:
        _shutdown_all(document.namespace)


def test_the_page_is_run_by_the_page_runner() -> None:
    """The page is among those tests/test_docs_run.py runs, so a block that stops running fails the suite."""
    from test_docs_run import PAGES

    assert Path(PAGE) in PAGES
