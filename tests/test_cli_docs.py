"""docs/cli.md: its commands parse, and its `tradetel config` sample is what the command prints."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tradetel.cli import _parser

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _blocks(language: str = "") -> list[str]:
    """The fenced blocks of the page whose fence names ``language`` (none: plain blocks)."""
    blocks: list[str] = []
    inside, keep, lines = False, False, []
    for line in DOC.read_text().splitlines():
        if not inside and line.startswith("```"):
            inside, keep, lines = True, line[3:] == language, []
        elif inside and line == "```":
            inside = False
            if keep:
                blocks.append("\n".join(lines))
        elif inside:
            lines.append(line)
    return blocks


def _commands() -> list[tuple[dict[str, str], list[str], list[str]]]:
    """Each ``$ [VAR=value ...] tradetel ...`` shown: its variables, its arguments, the lines after it."""
    found = []
    for block in _blocks():
        lines = block.replace("\\\n", "").splitlines()
        for index, line in enumerate(lines):
            if line.startswith("$ "):
                words = shlex.split(line[2:])
                position = words.index("tradetel")
                env = dict(word.split("=", 1) for word in words[:position])
                output = []
                for after in lines[index + 1 :]:
                    if after.startswith("$ "):
                        break
                    output.append(after)
                found.append((env, words[position + 1 :], output))
    return found


def test_every_documented_command_parses() -> None:
    """Each command shown on the page is accepted by the real argument parser, and every command is shown."""
    commands = _commands()
    assert {arguments[0] for _, arguments, _ in commands} >= {"catalog", "config", "check", "demo", "--version"}
    for _, arguments, _ in commands:
        if arguments != ["--version"]:
            _parser().parse_args(arguments)


def test_check_samples_use_the_check_line_format() -> None:
    """Every sample line of `tradetel check` is `<ok|warn|FAIL>  <check>  <detail>` or the summary line."""
    for _, arguments, output in _commands():
        if arguments[0] != "check":
            continue
        assert output
        for line in output:
            if line.startswith("tradetel check: "):
                assert re.fullmatch(r"tradetel check: \d+ failed, \d+ warnings?", line)
                continue
            status, name = line[:4].strip(), line[6:16].strip()
            assert status in ("ok", "warn", "FAIL") and line[4:6] == "  ", line
            assert name in ("settings", "catalog", "prometheus", "otlp", "dogstatsd"), line


def test_config_table_sample_is_what_the_command_prints(tmp_path: Path) -> None:
    """Run the documented `tradetel config` with the documented bot.toml: each sample row is printed as shown."""
    (toml,) = _blocks("toml")
    (tmp_path / "bot.toml").write_text(toml + "\n")
    env, arguments, output = next(c for c in _commands() if c[1][:1] == ["config"] and "--format" not in c[1])
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DD_", "TRADETEL_"))}
    result = subprocess.run(
        [sys.executable, "-m", "tradetel", *arguments],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    printed = {line.split()[0]: line.split() for line in result.stdout.splitlines()}
    assert len(output) > 30
    for line in output:
        assert printed[line.split()[0]] == line.split(), line
