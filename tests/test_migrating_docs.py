"""The migration guide's *after* blocks run as written and check their values with tradetel.testing.capture()."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "migrating.md"


def _blocks(info: str) -> list[str]:
    return re.findall(rf"```{info}\n(.*?)```", DOC.read_text(), re.S)


def test_every_after_block_runs_and_checks_its_values() -> None:
    """Each runnable block executes in order in one namespace, reads values with capture() and asserts them."""
    after = _blocks("python")
    assert len(after) == len(_blocks("python before")) == 5, "one after block for each before block"
    namespace: dict[str, object] = {"__name__": "migration_guide"}
    for index, block in enumerate(after):
        assert "with capture(" in block and "assert cap." in block, f"block {index} checks no value"
        try:
            exec(compile(block, f"{DOC.name}[block {index}]", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"block {index} of {DOC.name} failed:\n{block}") from error


def test_every_reference_is_migrated() -> None:
    """The guide has a before/after section for each of the five reference bots."""
    headings = re.findall(r"^### (\d{3}):", DOC.read_text(), re.M)
    assert sorted(headings) == ["000", "001", "002", "003", "004"]
