"""mypy --strict checks `tel.<domain>.<instrument>` call sites against the default catalog's stub."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tradetel._stubs import catalog_stub
from tradetel.catalog import DEFAULT_CATALOG

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"
STUB = ROOT / "src" / "tradetel" / "_catalog_types.pyi"
_ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[tuple[int, str]]]:
    """One mypy --strict run over every case file: (line, error code) per file name."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    files = sorted(str(path) for path in CASES.glob("*.py"))
    options = ["--strict", "--show-error-codes", "--no-error-summary", "--no-pretty", "--cache-dir", str(cache)]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *options, *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    errors: dict[str, set[tuple[int, str]]] = {Path(f).name: set() for f in files}
    for line in result.stdout.splitlines():
        match = _ERROR.match(line)
        if match:
            errors[Path(match["file"]).name].add((int(match["line"]), match["code"]))
    assert result.returncode in (0, 1), result.stderr  # 2: mypy itself failed
    return errors


def _expected(name: str) -> set[tuple[int, str]]:
    lines = (CASES / name).read_text().splitlines()
    marks = ((number, re.search(r"# E: ([a-z-]+)$", text)) for number, text in enumerate(lines, 1))
    return {(number, match[1]) for number, match in marks if match}


def test_good_call_sites_pass(mypy_errors: dict[str, set[tuple[int, str]]]) -> None:
    """Every correct call site in cases/good.py type-checks under --strict, custom-catalog lookups included."""
    assert mypy_errors["good.py"] == set()


def test_bad_call_sites_fail_with_their_codes(mypy_errors: dict[str, set[tuple[int, str]]]) -> None:
    """Each misspelt instrument or attribute keyword in cases/bad.py fails with the error code its line names."""
    expected = _expected("bad.py")
    assert {code for _, code in expected} >= {"attr-defined", "call-arg"}
    assert mypy_errors["bad.py"] == expected


def test_committed_stub_matches_catalog() -> None:
    """The committed _catalog_types.pyi is what `tradetel catalog --format pyi` generates from the default catalog."""
    assert STUB.read_text() == catalog_stub(DEFAULT_CATALOG)


def test_stub_declares_every_attribute_key() -> None:
    """The stub's recording method of each instrument takes exactly the catalog entry's attribute keys."""
    text = STUB.read_text()
    for spec in DEFAULT_CATALOG.values():
        block = text.split(f'"""``{spec.name}``:', 1)[1].split("\nclass ", 1)[0]
        method = {"counter": "add", "up_down_counter": "add", "gauge": "set", "histogram": "record"}[spec.kind.value]
        signature = re.search(rf"def {method}\(self, [^)]*\)", block)
        assert signature is not None, spec.name
        keys = re.findall(r"(\w+): object = \.\.\.", signature[0])
        assert tuple(keys) == spec.attribute_keys, spec.name
