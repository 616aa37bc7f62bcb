"""Console exporter: prints each push collection as JSON lines (for development)."""

from __future__ import annotations

import sys
from typing import IO

from opentelemetry.sdk.metrics.export import MetricsData

__all__ = ["ConsoleExporter"]


class ConsoleExporter:
    """Writes each cumulative collection to ``out`` (default ``sys.stdout``) as one JSON document."""

    name = "console"

    def __init__(self, out: IO[str] | None = None) -> None:
        self._out = out

    def export(self, data: MetricsData, timeout: float) -> None:
        out = self._out or sys.stdout
        out.write(data.to_json(indent=None) + "\n")
        out.flush()

    def shutdown(self, timeout: float) -> None:
        pass
