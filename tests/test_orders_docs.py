"""The snippets of docs/orders.md run as written, in order, and their assertions hold."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "orders.md"


def test_every_snippet_runs() -> None:
    """Each python block of the order tracker guide executes without error in one shared namespace."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 6
    namespace: dict[str, object] = {"__name__": "orders_guide"}
    for index, block in enumerate(blocks):
        try:
            exec(compile(block, f"{DOC.name}[block {index}]", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"block {index} of {DOC.name} failed:\n{block}") from error
