"""mypy --strict keeps the decorated callables' types: it accepts correct calls and rejects wrong ones."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


def _mypy(*files: Path) -> dict[str, dict[int, list[str]]]:
    """Run mypy --strict on ``files``; return the error messages by file name and line."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "typing-tests"),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 2 would be a crash or a usage error
    errors: dict[str, dict[int, list[str]]] = {}
    for line in result.stdout.splitlines():
        found = ERROR.match(line)
        if found:
            by_line = errors.setdefault(Path(found["file"]).name, {})
            by_line.setdefault(int(found["line"]), []).append(found["message"])
    return errors


def test_mypy_accepts_typed_usage_and_rejects_wrong_types() -> None:
    """The typed module has no error, and each line marked '# rejected' (and only those) fails type checking."""
    rejected = HERE / "rejected_usage.py"
    errors = _mypy(HERE / "typed_usage.py", rejected)
    assert errors.get("typed_usage.py", {}) == {}
    marked = {n for n, text in enumerate(rejected.read_text().splitlines(), 1) if text.endswith("# rejected")}
    assert len(marked) == 6
    assert set(errors.get("rejected_usage.py", {})) == marked
    messages = " ".join(m for ms in errors["rejected_usage.py"].values() for m in ms)
    assert 'Argument 3 to "place" has incompatible type "str"; expected "float"' in messages
    assert 'Argument 1 to "load" of "Bot" has incompatible type "float"; expected "str"' in messages
