"""The extension point for push backends: what an exporter implements and what it may raise.

An exporter is any object with a ``name``, ``export(data, timeout)`` and
``shutdown(timeout)`` (:class:`PushExporter`); hand it to
``tradetel.configure(exporters=[...])``, alone or next to the built-in
names. tradetel calls ``export`` from its one export thread every
``export_interval`` with the cumulative collection of the shared reader (an
OpenTelemetry ``MetricsData``), and ``shutdown`` once after the final flush.
Any exception from ``export`` is counted in ``tradetel.export.failures``
under the exception's type; raise :class:`ExportFailure` to name the
reasons yourself, after sending what could be sent. An exporter may also
implement any of the optional hooks of :class:`ExporterHooks`.

Example::

    from opentelemetry.sdk.metrics.export import MetricsData
    from tradetel.exporters.base import ExportFailure

    class PointCounter:
        name = "points"
        failure_reasons = ("empty",)

        def __init__(self) -> None:
            self.points = 0

        def export(self, data: MetricsData, timeout: float) -> None:
            points = sum(
                len(metric.data.data_points)
                for resource in data.resource_metrics
                for scope in resource.scope_metrics
                for metric in scope.metrics
            )
            if not points:
                raise ExportFailure(["empty"], "nothing recorded yet")
            self.points += points

        def shutdown(self, timeout: float) -> None:
            pass

    tel = tradetel.configure(exporters=["prometheus", PointCounter()])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .._pipeline import ExportFailure, PushExporter

if TYPE_CHECKING:
    from .._pipeline import SharedReader

__all__ = ["ExportFailure", "ExporterHooks", "PushExporter"]


@runtime_checkable
class ExporterHooks(Protocol):
    """Optional methods and attributes of a :class:`PushExporter`; tradetel uses each one that is present.

    An exporter implements only the ones it needs: tradetel looks each up by name
    (``getattr``), so this protocol documents them and lets a type checker verify
    an exporter that declares all of them.
    """

    failure_reasons: tuple[str, ...]
    """The ``reason`` values its failures can carry; their series start at 0 at ``configure()``."""

    def refused(self, timeout: float) -> bool:
        """Whether the backend refuses connections right now; at the final flush, a refusing backend is skipped."""
        ...

    def after_fork_in_child(self) -> None:
        """In a forked child: drop the parent's sockets and threads (the child exports its own data)."""
        ...

    def bind_reader(self, reader: SharedReader) -> None:
        """Receive the shared reader when the export loop is built (the OTLP exporter reads its temporalities)."""
        ...
