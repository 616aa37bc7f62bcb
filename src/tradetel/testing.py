"""Helpers for testing your own instrumentation.

:func:`capture` gives a :class:`~tradetel.Telemetry` with no backends and a
:class:`Capture` to read back what was recorded, by instrument name and
attributes, from the in-memory collection (no exposition text parsing).

Example::

    from tradetel.testing import capture

    def test_fill_is_counted():
        with capture() as cap:
            my_bot.on_fill(cap.telemetry, symbol="BTC-USD")
            assert cap.value("orders.filled", symbol="BTC-USD") == 1
            assert cap.histogram("orders.latency").count == 1
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics.export import HistogramDataPoint, Metric, NumberDataPoint

from .catalog import Catalog, InstrumentSpec
from .telemetry import Telemetry, configure

__all__ = ["Capture", "HistogramValue", "capture"]


@dataclass(frozen=True, slots=True)
class HistogramValue:
    """A histogram series (or the merge of several): count, sum, bounds and per-bucket counts."""

    count: int
    sum: float
    bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    min: float
    max: float


class Capture:
    """Reads what a :class:`~tradetel.Telemetry` recorded.

    Names may be relative (``orders.filled``) or full (``trading.orders.filled``).
    Attribute arguments filter series: a series matches when it has every given
    attribute with that (normalised) value; values of matching series are summed.

    Example::

        cap = Capture(tel)
        cap.value("orders.filled", symbol="BTC-USD")  # sum over sides and exchanges
    """

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def _metric(self, name: str) -> Metric | None:
        full = self.telemetry.instrument(name).name if _known(self.telemetry, name) else name
        for resource_metrics in self.telemetry.collect().resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == full:
                        return metric
        return None

    def series(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """Every series of an instrument as ``(attributes, value)``; histograms give a :class:`HistogramValue`."""
        metric = self._metric(name)
        if metric is None:
            return []
        out: list[tuple[dict[str, Any], Any]] = []
        for point in metric.data.data_points:
            if isinstance(point, HistogramDataPoint):
                out.append((dict(point.attributes or {}), _histogram([point])))
            elif isinstance(point, NumberDataPoint):
                out.append((dict(point.attributes or {}), point.value))
        return out

    def _matching(self, name: str, attributes: Mapping[str, object]) -> list[Any]:
        wanted = dict(attributes.items())
        points: list[Any] = []
        metric = self._metric(name)
        if metric is None:
            return points
        for point in metric.data.data_points:
            have = point.attributes or {}
            if all(have.get(k) == v for k, v in wanted.items()):
                points.append(point)
        return points

    def value(self, name: str, /, **attributes: object) -> float:
        """Sum of the matching series of a counter, up-down counter or gauge (0 when none match)."""
        points = self._matching(name, attributes)
        if any(isinstance(p, HistogramDataPoint) for p in points):
            raise TypeError(f"{name} is a histogram: use histogram()")
        return float(sum(p.value for p in points))

    def histogram(self, name: str, /, **attributes: object) -> HistogramValue:
        """Matching histogram series merged (count 0 when none match)."""
        points = self._matching(name, attributes)
        if any(isinstance(p, NumberDataPoint) for p in points):
            raise TypeError(f"{name} is not a histogram: use value()")
        return _histogram(points)

    def exemplars(self, name: str, /, **attributes: object) -> list[Any]:
        """The exemplars of the matching series (OpenTelemetry ``Exemplar`` objects), oldest first.

        Empty unless exemplars are on (``capture(exemplar_filter="always_on")``, see ``docs/exemplars.md``).
        """
        found = [exemplar for point in self._matching(name, attributes) for exemplar in point.exemplars]
        return sorted(found, key=lambda exemplar: exemplar.time_unix_nano)

    def dropped(self, reason: str | None = None, instrument: str | None = None) -> float:
        """How many measurements tradetel dropped (optionally by reason and instrument name)."""
        filters: dict[str, object] = {}
        if reason is not None:
            filters["reason"] = reason
        if instrument is not None:
            filters["instrument"] = self.telemetry.instrument(instrument).name
        return self.value("tradetel.measurements.dropped", **filters)


def _known(telemetry: Telemetry, name: str) -> bool:
    try:
        telemetry.instrument(name)
    except KeyError:
        return False
    return True


def _histogram(points: list[Any]) -> HistogramValue:
    if not points:
        return HistogramValue(0, 0.0, (), (), 0.0, 0.0)
    bounds = tuple(points[0].explicit_bounds)
    counts = [0] * len(points[0].bucket_counts)
    for point in points:
        for index, count in enumerate(point.bucket_counts):
            counts[index] += count
    return HistogramValue(
        count=sum(p.count for p in points),
        sum=sum(p.sum for p in points),
        bounds=bounds,
        bucket_counts=tuple(counts),
        min=min(p.min for p in points),
        max=max(p.max for p in points),
    )


@contextmanager
def capture(
    catalog: Catalog | list[InstrumentSpec] | None = None, *, strict: bool = False, **settings: Any
) -> Iterator[Capture]:
    """A fresh :class:`~tradetel.Telemetry` with no backends, read through a :class:`Capture`; shut down on exit.

    The environment is not read and the runtime metrics are off (``runtime_metrics=True`` turns them
    on), so the results do not depend on the machine and two collections without a measurement
    between them are equal.
    """
    settings.setdefault("runtime_metrics", False)
    telemetry = configure(catalog=catalog, exporters="none", strict=strict, env={}, **settings)
    try:
        yield Capture(telemetry)
    finally:
        telemetry.shutdown()
