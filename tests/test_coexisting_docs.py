"""The snippets of docs/coexisting.md run as written, in order, and their assertions hold."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import prometheus_client
import pytest

import tradetel

DOC = Path(__file__).resolve().parents[1] / "docs" / "coexisting.md"


def test_every_snippet_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each python block of the coexistence guide executes without error in one shared namespace."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 7
    # The guide registers on prometheus_client's process-wide REGISTRY: give it a fresh one for this test.
    monkeypatch.setattr(prometheus_client, "REGISTRY", prometheus_client.CollectorRegistry(auto_describe=True))
    created: list[tradetel.Telemetry] = []
    configure = tradetel.configure

    def recording_configure(**arguments: Any) -> tradetel.Telemetry:
        telemetry = configure(**arguments)
        created.append(telemetry)
        return telemetry

    monkeypatch.setattr(tradetel, "configure", recording_configure)
    namespace: dict[str, object] = {"__name__": "coexisting_guide"}
    try:
        for index, block in enumerate(blocks):
            try:
                exec(compile(block, f"{DOC.name}[block {index}]", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"block {index} of {DOC.name} failed:\n{block}") from error
    finally:
        for telemetry in created:
            telemetry.shutdown()
    assert len(created) >= 4
