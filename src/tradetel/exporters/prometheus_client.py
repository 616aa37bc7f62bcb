"""Living with ``prometheus_client``: tradetel's metrics on the bot's registry, and the registry on tradetel's endpoint.

Two directions, both built on the same collection that tradetel's own
endpoint serves:

- :class:`TradetelCollector` is a ``prometheus_client`` custom collector.
  Registered on the registry a bot already serves (``REGISTRY``, behind
  ``start_http_server``, ``make_asgi_app`` or prometheus-fastapi-instrumentator),
  it adds tradetel's families with the same names, types, units, label sets
  and values as tradetel's own ``/metrics``.
- :class:`RegistrySource` appends the families of a ``prometheus_client``
  registry to tradetel's endpoint (``configure(prometheus_registry=REGISTRY)``).
  A family whose name is also one of tradetel's is left out, once per name
  logged; tradetel's family wins, and no family is ever served twice.

Both directions at once (the collector on ``REGISTRY`` and ``REGISTRY`` on
tradetel's endpoint) serve each family once: while a Telemetry's endpoint
reads the registry, that Telemetry's collector yields nothing.

Example::

    from prometheus_client import REGISTRY
    from tradetel.exporters.prometheus_client import TradetelCollector

    tel = tradetel.configure(exporters="none")
    REGISTRY.register(TradetelCollector(tel))
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

try:
    from prometheus_client.exposition import generate_latest
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "tradetel.exporters.prometheus_client needs the prometheus-client package: pip install prometheus-client"
    ) from error

from opentelemetry.sdk.metrics.export import HistogramDataPoint, MetricsData, NumberDataPoint

from ..catalog import Kind
from ._naming import prometheus_name, prometheus_unit
from .prometheus import _kind, _label_mapping, _number

__all__ = ["RegistrySource", "TradetelCollector", "family_names"]

_logger = logging.getLogger("tradetel")
_TYPES = {Kind.COUNTER: "counter", Kind.UP_DOWN_COUNTER: "gauge", Kind.GAUGE: "gauge", Kind.HISTOGRAM: "histogram"}
_reading_registry = threading.local()


class TradetelCollector(Collector):
    """A ``prometheus_client`` collector yielding tradetel's metric families, as tradetel's endpoint serves them.

    Each scrape of the registry collects tradetel once. ``describe()`` names
    every catalog family (and ``target_info``), so that registering this
    collector on a registry that already has one of those names raises
    ``prometheus_client``'s own duplicate error at start-up rather than
    serving a family twice.

    Args:
        telemetry: the configured :class:`~tradetel.Telemetry`.
        target_info: also yield ``target_info`` with the resource attributes, as tradetel's endpoint does.
            Use ``False`` when the registry has its own (``registry.set_target_info``).

    Example::

        REGISTRY.register(TradetelCollector(tel))
        start_http_server(8000)   # the bot's endpoint now serves tradetel's families too
    """

    def __init__(self, telemetry: Any, *, target_info: bool = True) -> None:
        self._telemetry = telemetry
        self._target_info = target_info

    def describe(self) -> Iterable[Metric]:
        """The families tradetel always serves: one per catalog instrument, and ``target_info``."""
        catalog = self._telemetry.catalog
        names = [(catalog.prometheus_name(spec), spec.kind, spec.unit) for spec in catalog.values()]
        if self._target_info:
            yield Metric("target_info", "Target metadata", "gauge")
        for name, kind, unit in names:
            yield _family(name, kind, unit, "")

    def collect(self) -> Iterable[Metric]:
        if getattr(_reading_registry, "serving", None) is self._telemetry or self._telemetry.closed:
            return []  # tradetel's endpoint serves these itself; a closed Telemetry has nothing to say
        try:
            data = self._telemetry.collect()
        except Exception:
            _logger.exception("tradetel: collecting for the prometheus_client registry failed")
            return []
        return list(families(data, target_info=self._target_info))

    def __repr__(self) -> str:
        return f"<TradetelCollector {self._telemetry!r}>"


def families(data: MetricsData, *, target_info: bool = True) -> Iterator[Metric]:
    """``data`` as ``prometheus_client`` metric families, with the names, labels and values of tradetel's endpoint."""
    merged: dict[str, tuple[Kind, Metric]] = {}
    if target_info:
        for resource_metrics in data.resource_metrics[:1]:
            attributes = resource_metrics.resource.attributes
            if attributes:
                info = Metric("target_info", "Target metadata", "gauge")
                info.add_sample("target_info", _label_dict(attributes), 1)
                yield info
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = _kind(metric.data)
                if kind is None:
                    continue
                name = prometheus_name(metric.name, kind, metric.unit or "")
                found = merged.get(name)
                if found is None:
                    family = _family(name, kind, metric.unit or "", metric.description or metric.name)
                    merged[name] = (kind, family)
                elif found[0] is not kind:
                    continue  # tradetel's endpoint serves only the first kind too (and logs it)
                else:
                    family = found[1]
                if kind is Kind.HISTOGRAM:
                    for point in metric.data.data_points:
                        assert isinstance(point, HistogramDataPoint)
                        _histogram_samples(family, name, point)
                else:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        family.add_sample(name, _label_dict(point.attributes), point.value)
    for _, family in merged.values():
        yield family


def _family(name: str, kind: Kind, unit: str, description: str) -> Metric:
    base = name.removesuffix("_total") if kind is Kind.COUNTER else name
    suffix = prometheus_unit(kind, unit)
    # prometheus_client appends a unit the name does not end with; tradetel's names end with theirs already.
    shown = suffix if suffix and base.endswith("_" + suffix) else ""
    return Metric(base, description, _TYPES[kind], unit=shown)


def _label_dict(attributes: Any, histogram: bool = False) -> dict[str, str]:
    # Keys that collide once sanitised are merged (values joined by ';'), as on tradetel's endpoint.
    return _label_mapping(attributes, histogram) if attributes else {}


def _histogram_samples(family: Metric, name: str, point: HistogramDataPoint) -> None:
    labels = _label_dict(point.attributes, histogram=True)
    cumulative = 0
    for bound, count in zip(point.explicit_bounds, point.bucket_counts, strict=False):
        cumulative += count
        family.add_sample(name + "_bucket", {**labels, "le": _number(float(bound))}, cumulative)
    family.add_sample(name + "_bucket", {**labels, "le": "+Inf"}, point.count)
    family.add_sample(name + "_sum", labels, point.sum)
    family.add_sample(name + "_count", labels, point.count)


def family_names(data: MetricsData) -> frozenset[str]:
    """Every metric and sample name tradetel's endpoint writes for ``data``, ``target_info`` included."""
    names = {"target_info"}
    for family in families(data, target_info=False):
        names.add(_exposed_name(family))
        names.update(sample.name for sample in family.samples)
    return frozenset(names)


def _exposed_name(family: Metric) -> str:
    return family.name + "_total" if family.type == "counter" else family.name


class RegistrySource:
    """The families of a ``prometheus_client`` registry, to append to tradetel's exposition.

    Called with the collection tradetel is about to serve, it returns the
    registry's families in text format 0.0.4, leaving out every family with
    a name tradetel serves too (logged once per name). A registry that fails
    to collect costs its own families, logged, never tradetel's.

    Example::

        tel = tradetel.configure(exporters="prometheus", prometheus_registry=REGISTRY)
    """

    def __init__(self, registry: Any) -> None:
        if not callable(getattr(registry, "collect", None)):
            from ..errors import ConfigurationError

            raise ConfigurationError(
                "prometheus_registry", type(registry).__name__, "a prometheus_client CollectorRegistry (or a collector)"
            )
        self.registry = registry
        self.serving: Any = None
        self._collisions: set[str] = set()
        self._lock = threading.Lock()

    def bind(self, telemetry: Any) -> None:
        """Name the Telemetry whose endpoint serves this source: its own collector in the registry is skipped."""
        self.serving = telemetry

    def __call__(self, data: MetricsData) -> bytes:
        taken = family_names(data)
        try:
            _reading_registry.serving = self.serving
            collected = list(self.registry.collect())
        except Exception:
            _logger.exception("tradetel: collecting the prometheus_client registry failed; its families are left out")
            return b""
        finally:
            _reading_registry.serving = None
        kept = [family for family in collected if not self._collides(family, taken)]
        return generate_latest(_Families(kept)) if kept else b""

    def _collides(self, family: Metric, taken: frozenset[str]) -> bool:
        names = {family.name, _exposed_name(family), *(sample.name for sample in family.samples)}
        clash = names & taken
        if not clash:
            return False
        name = min(clash)
        with self._lock:
            first = name not in self._collisions
            self._collisions.add(name)
        if first:
            _logger.warning(
                "tradetel: the prometheus_client family %s has a name tradetel serves too (%s); "
                "tradetel's is served, the registry's is left out",
                family.name,
                name,
            )
        return True

    def __repr__(self) -> str:
        return f"<RegistrySource {self.registry!r}>"


class _Families:
    """What ``generate_latest`` needs of a registry: ``collect()``."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics
