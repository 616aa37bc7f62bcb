"""The module structure: no import cycle around the catalog, naming beside the exporters, no global decorator state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "tradetel"


def _imports(relative: str) -> set[str]:
    """The tradetel modules a source file imports anywhere in it (at the top, in functions or for type checking)."""
    path = PACKAGE / relative
    package = ["tradetel", *Path(relative).parent.parts]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if module.startswith("tradetel"):
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tradetel"))
    return found


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("_catalog.py", {"tradetel.catalog", "tradetel._default_catalog"}),
        ("_default_catalog.py", {"tradetel.catalog"}),
        ("telemetry.py", {"tradetel.decorators"}),
    ],
)
def test_no_import_back(module: str, forbidden: set[str]) -> None:
    """The catalog types, the built-in table and the Telemetry do not import the modules built on them."""
    assert _imports(module) & forbidden == set()


def test_prometheus_naming_imports_nothing_of_tradetel() -> None:
    """exporters/_naming.py stands alone, so the catalog can use it without a cycle."""
    assert _imports("exporters/_naming.py") == set()


def test_exporters_take_names_from_naming_module() -> None:
    """The Prometheus exporters import the naming rules from exporters/_naming, not from the catalog."""
    for module in ("exporters/_exposition.py", "exporters/prometheus_client.py", "runtime.py"):
        imported = _imports(module)
        assert "tradetel.catalog.prometheus_name" not in imported, module
        assert "tradetel.exporters._naming.prometheus_name" in imported, module


def test_decorators_keep_no_module_state() -> None:
    """No decorators module creates a lock or a weak dictionary at import: shared state belongs to a Telemetry."""
    for path in sorted((PACKAGE / "decorators").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
                called = ast.unparse(node.value.func)
                assert not called.endswith(("Lock", "RLock", "WeakKeyDictionary")), f"{path.name}: {called}"


def test_decorators_record_through_emit_only() -> None:
    """Generic and trading decorators never call a plan's add/record/set directly: every measurement uses emit()."""
    for name in ("_generic.py", "_trading.py"):
        source = (PACKAGE / "decorators" / name).read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = ast.unparse(node.func)
                assert target not in ("plan.add", "plan.record", "plan.set"), f"{name}: {target}"
