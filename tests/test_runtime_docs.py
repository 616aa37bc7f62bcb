"""docs/runtime-metrics.md: its table is the generated one, and its snippets run as written."""

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


def test_every_snippet_runs() -> None:
    """Each python block of the page executes without error, in order, in one shared namespace."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 2
    namespace: dict[str, object] = {"__name__": "runtime_metrics_guide"}
    for index, block in enumerate(blocks):
        try:
            exec(compile(block, f"{DOC.name}[block {index}]", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"block {index} of {DOC.name} failed:\n{block}") from error
