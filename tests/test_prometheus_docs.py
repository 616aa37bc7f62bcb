"""The snippets of docs/backends/prometheus.md that configure tradetel run as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "backends" / "prometheus.md"


def test_negotiation_snippet_runs() -> None:
    """The formats-and-filtering example executes and its assertions hold against the real endpoint."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if "name[]=" in b]
    assert len(blocks) == 1
    try:
        exec(compile(blocks[0], f"{DOC.name}[negotiation]", "exec"), {"__name__": "prometheus_guide"})
    except Exception as error:
        raise AssertionError(f"the negotiation example of {DOC.name} failed:\n{blocks[0]}") from error
