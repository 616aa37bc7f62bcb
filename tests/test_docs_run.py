"""Every Python block in README.md and docs/ runs as written, page by page, with Sybil.

Blocks of one page share one namespace and run in order, as a reader would paste them. A page may
prepare what it leaves unsaid in an invisible block (``<!-- invisible-code-block: python ... -->``),
and a block that cannot run here is marked ``<!-- skip: next "why" -->``: the reason must be listed in
:data:`NOT_RUN`, so a skip is a decision in review, never a silent pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from unittest import SkipTest

import pytest
from sybil import Document
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

import tradetel
from tradetel import Telemetry

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

# (page, reason) of every block that is shown but not run; the test fails on any other skip.
NOT_RUN: set[tuple[str, str]] = set()

# The blocks run as written; only the process around them differs from a reader's: any free port instead
# of 9464 (a test must not depend on it being free), and a short final flush to absent push backends.
ENVIRONMENT = {"OTEL_EXPORTER_PROMETHEUS_PORT": "0", "TRADETEL_SHUTDOWN_TIMEOUT": "1"}


def _examples(page: Path) -> Iterator[object]:
    document = Document.parse(str(page), PythonCodeBlockParser(), SkipParser())
    yield from document.examples()


def _shutdown_all(namespace: dict[str, object]) -> None:
    for value in list(namespace.values()):
        if isinstance(value, Telemetry):
            value.shutdown()
        capture = getattr(value, "telemetry", None)
        if isinstance(capture, Telemetry):
            capture.shutdown()
    tradetel.set_default(None)


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_python_blocks_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's Python blocks execute in order in one namespace without error."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setitem(os.environ, name, value)
    monkeypatch.chdir(ROOT)
    document = Document.parse(str(page), PythonCodeBlockParser(), SkipParser())
    skipped: list[str] = []
    try:
        for example in document.examples():
            try:
                example.evaluate()
            except SkipTest as skip:
                skipped.append(str(skip))
    finally:
        _shutdown_all(document.namespace)
    name = str(page.relative_to(ROOT))
    unlisted = {reason for reason in skipped if (name, reason) not in NOT_RUN}
    assert not unlisted, f"{name}: blocks skipped without being listed in NOT_RUN: {sorted(unlisted)}"


def test_docs_have_python_blocks() -> None:
    """The runner finds the blocks it is meant to run (a broken fence pattern would make every page pass)."""
    counted = {str(page.relative_to(ROOT)): sum(1 for _ in _examples(page)) for page in PAGES}
    assert counted["README.md"] >= 4
    assert counted["docs/decorators.md"] >= 12
    assert counted["docs/coexisting.md"] >= 7
    assert counted["docs/migrating.md"] == 5
    assert counted["docs/architecture.md"] == 2
    assert counted["docs/exemplars.md"] == 4
