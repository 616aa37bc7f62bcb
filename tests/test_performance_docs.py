"""docs/performance.md lists every private SDK name the fast path uses (test_docs_run runs its block)."""

from __future__ import annotations

import re
from pathlib import Path

from tradetel._sdk import private_names_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def test_private_names_table_is_current() -> None:
    """The table between the markers equals the one generated from tradetel._sdk.PRIVATE_NAMES."""
    match = re.search(r"<!-- private-names:begin[^\n]*-->\n(.*?)\n<!-- private-names:end -->", DOC.read_text(), re.S)
    assert match is not None
    assert match.group(1) == private_names_markdown()


def test_the_page_has_a_block_for_the_docs_runner() -> None:
    """The docs runner finds the page's Python block (a broken fence would let it pass on none)."""
    from sybil import Document
    from sybil.parsers.markdown import PythonCodeBlockParser

    assert len(list(Document.parse(str(DOC), PythonCodeBlockParser()).examples())) == 1
