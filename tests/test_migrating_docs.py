"""The migration guide pairs each reference bot's code before with tradetel code after that checks its values.

tests/test_docs_run.py runs the *after* blocks (fenced ``python``); the *before* blocks (fenced
``python before``) are the reference bots' own code and are shown, not run.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "migrating.md"


def _blocks(info: str) -> list[str]:
    return re.findall(rf"```{info}\n(.*?)```", DOC.read_text(), re.S)


def test_every_before_has_an_after_that_checks_values() -> None:
    """Five before blocks, five after blocks, each after block reading its values through capture() and asserting."""
    after = _blocks("python")
    assert len(after) == len(_blocks("python before")) == 5
    for index, block in enumerate(after):
        assert "with capture(" in block and "assert cap." in block, f"after block {index} checks no value"


def test_every_reference_is_migrated() -> None:
    """The guide has a before/after section for each of the five reference bots."""
    headings = re.findall(r"^### (\d{3}):", DOC.read_text(), re.M)
    assert sorted(headings) == ["000", "001", "002", "003", "004"]
