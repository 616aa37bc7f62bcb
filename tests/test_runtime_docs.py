"""docs/runtime-metrics.md lists the runtime metrics as the code defines them (test_docs_run runs its blocks)."""

from __future__ import annotations

import re
from pathlib import Path

from tradetel.runtime import _markdown_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "runtime-metrics.md"


def test_metrics_table_is_current() -> None:
    """The table between the markers equals the one generated from tradetel.runtime.RUNTIME_METRICS."""
    match = re.search(
        r"<!-- runtime-metrics:begin[^\n]*-->\n(.*?)\n<!-- runtime-metrics:end -->", DOC.read_text(), re.S
    )
    assert match is not None
    assert match.group(1) == _markdown_table()


def test_the_page_has_blocks_for_the_docs_runner() -> None:
    """The docs runner finds this page's two Python blocks (a broken fence would let it pass on none)."""
    from sybil import Document
    from sybil.parsers.markdown import PythonCodeBlockParser

    assert len(list(Document.parse(str(DOC), PythonCodeBlockParser()).examples())) == 2
