"""docs/scale-out.md, fleet sections: rules pass promtool, commands parse, every fleet file is named."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tradetel.cli import _parser

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "scale-out.md"


def _blocks(language: str) -> list[str]:
    """The ``language`` blocks of the fleet sections (from "Fleet layout" on; the worker sections come before)."""
    text = DOC.read_text()
    fleet = text[text.index("\n## Fleet layout") :]
    return re.findall(rf"^```{language}\n(.*?)^```$", fleet, re.S | re.M)


def _bench_fleet() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fleet", REPO / "benchmarks" / "bench_fleet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_page_has_its_sections() -> None:
    """The page has the fleet sections, in order."""
    headings = re.findall(r"^## (.+)$", DOC.read_text(), re.M)
    wanted = ["Fleet layout", "Gateways and remote write", "Kubernetes and compose", "Capacity", "What to watch"]
    assert [h for h in headings if h in wanted] == wanted


def test_alerting_rules_pass_promtool(promtool: str, tmp_path: Path) -> None:
    """The rules shown under "What to watch" are a valid Prometheus rules file (syntax and PromQL)."""
    (rules,) = _blocks("yaml")
    path = tmp_path / "rules.yml"
    path.write_text(rules)
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_shell_commands_name_files_that_exist_and_parse() -> None:
    """Every file a shell block names exists; `tradetel` and `bench_fleet.py` commands parse with the real parsers."""
    commands = [line for block in _blocks("sh") for line in block.splitlines() if line and not line.startswith("#")]
    assert commands
    for line in commands:
        words = shlex.split(line.split("  #")[0])
        for word in words:
            if word.startswith(("collector/", "deploy/", "benchmarks/")):
                assert (REPO / word).exists(), f"{line!r} names {word}, which does not exist"
        if words[0] == "tradetel":
            _parser().parse_args(words[1:])
        elif words[-1].endswith("bench_fleet.py") or "benchmarks/bench_fleet.py" in words:
            position = words.index("benchmarks/bench_fleet.py")
            _bench_fleet().parser().parse_args(words[position + 1 :])


@pytest.mark.parametrize("config", sorted(p.name for p in (REPO / "collector").glob("fleet-*.yaml")))
def test_every_fleet_config_is_in_the_table(config: str) -> None:
    """The layout table names every fleet config that collector/ ships."""
    assert f"| `collector/{config}` |" in DOC.read_text()
