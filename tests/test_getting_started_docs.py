"""The code blocks of docs/getting-started.md run as written, in order, and the test they show passes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import tradetel

DOC = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"


@pytest.fixture
def page_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's configure() calls read the environment: no inherited settings, and any free port for /metrics.

    The page binds 127.0.0.1:9464; the suite may run beside other processes that hold it, so the port is
    the one setting changed here, through the environment variable the page's configure() reads.
    """
    for name in list(os.environ):
        if name.startswith(("OTEL_", "TRADETEL_", "DD_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")


def test_every_block_runs_in_order(page_env: None) -> None:
    """Each python block executes in one namespace; the test function the page shows is then run and passes."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__name__": "getting_started"}
    try:
        for index, block in enumerate(blocks):
            try:
                exec(compile(block, f"{DOC.name}[block {index}]", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"block {index} of {DOC.name} failed:\n{block}") from error
        tests = [value for name, value in namespace.items() if name.startswith("test_") and callable(value)]
        assert len(tests) == 1
        for test in tests:
            test()
        tel = namespace["tel"]
        assert isinstance(tel, tradetel.Telemetry)
        assert "closed=True" in repr(tel)  # the page ends by shutting it down
    finally:
        tradetel.set_default(None)
        for value in namespace.values():
            if isinstance(value, tradetel.Telemetry):
                value.shutdown()
