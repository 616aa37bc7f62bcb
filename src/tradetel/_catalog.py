"""The catalog's types: :class:`Kind`, :class:`Attribute`, :class:`InstrumentSpec` and :class:`Catalog`.

Public through :mod:`tradetel.catalog`, which adds the built-in table
(:data:`~tradetel.catalog.DEFAULT_CATALOG`, built in ``_default_catalog``
from these types) and the Prometheus naming rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from .errors import CatalogError
from .exporters._naming import prometheus_name
from .labels import Free, LabelPolicy

__all__ = ["SELF_NAMESPACE", "Attribute", "Catalog", "InstrumentSpec", "Kind"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_NAMESPACE = re.compile(r"^[a-z][a-z0-9_]*$")
SELF_NAMESPACE = "tradetel"
"""Namespace of tradetel's own instruments; fixed, whatever the user's namespace."""


class Kind(StrEnum):
    """The OpenTelemetry instrument kind of a catalog entry."""

    COUNTER = "counter"
    UP_DOWN_COUNTER = "up_down_counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class Attribute:
    """An attribute key an instrument accepts, and the policy that normalises its values."""

    key: str
    policy: LabelPolicy = field(default_factory=Free)
    description: str = ""

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise CatalogError("Attribute.key", self.key, "lower-case letters, digits and underscores")


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One row of the catalog.

    Args:
        name: dotted lower-case name relative to the namespace, e.g. ``orders.filled``.
        kind: counter, up-down counter, gauge or histogram.
        unit: UCUM unit (``s``, ``1``, ``{order}``, ``[bp]``...).
        description: help text; required, Prometheus tooling needs it.
        attributes: the attribute keys accepted, in a stable order.
        buckets: explicit histogram bucket boundaries (histograms only; required for them).
        cardinality_limit: series limit for the view; ``None`` uses the configured default.
        self_metric: tradetel's own instrument, named under ``tradetel.`` whatever the namespace.
    """

    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[Attribute, ...] = ()
    buckets: tuple[float, ...] | None = None
    cardinality_limit: int | None = None
    self_metric: bool = False

    def __post_init__(self) -> None:
        where = f"catalog[{self.name!r}]"
        if not _NAME.match(self.name):
            raise CatalogError(f"{where}.name", self.name, "dotted lower-case words, e.g. 'orders.filled'")
        if not isinstance(self.kind, Kind):
            raise CatalogError(f"{where}.kind", self.kind, "one of " + ", ".join(k.value for k in Kind))
        if not self.description.strip():
            raise CatalogError(f"{where}.description", self.description, "a non-empty help text")
        keys = [a.key for a in self.attributes]
        if len(set(keys)) != len(keys):
            raise CatalogError(f"{where}.attributes", keys, "distinct attribute keys")
        if self.kind is Kind.HISTOGRAM:
            if not self.buckets:
                raise CatalogError(f"{where}.buckets", self.buckets, "explicit bucket boundaries for a histogram")
            if any(not math.isfinite(b) for b in self.buckets) or any(
                a >= b for a, b in zip(self.buckets, self.buckets[1:], strict=False)
            ):
                raise CatalogError(f"{where}.buckets", self.buckets, "finite, strictly increasing boundaries")
        elif self.buckets is not None:
            raise CatalogError(f"{where}.buckets", self.buckets, "None for a non-histogram instrument")
        if self.cardinality_limit is not None and self.cardinality_limit < 1:
            raise CatalogError(f"{where}.cardinality_limit", self.cardinality_limit, "an integer >= 1 or None")

    @property
    def domain(self) -> str:
        """The first segment of the name: ``orders``, ``trades``, ``risk``..."""
        return SELF_NAMESPACE if self.self_metric else self.name.split(".", 1)[0]

    @property
    def attribute_keys(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.attributes)


class Catalog(Mapping[str, InstrumentSpec]):
    """An immutable, ordered table of instrument specs keyed by relative name.

    Example::

        >>> catalog = Catalog([InstrumentSpec("orders.filled", Kind.COUNTER, "{order}", "Orders filled.")])
        >>> catalog["orders.filled"].kind
        <Kind.COUNTER: 'counter'>
    """

    __slots__ = ("_namespace", "_specs")

    def __init__(self, specs: Iterable[InstrumentSpec], namespace: str = "trading") -> None:
        if not _NAMESPACE.match(namespace):
            raise CatalogError("namespace", namespace, "one lower-case word of letters, digits and underscores")
        table: dict[str, InstrumentSpec] = {}
        for spec in specs:
            if not isinstance(spec, InstrumentSpec):
                raise CatalogError("catalog entry", spec, "an InstrumentSpec")
            if spec.name in table:
                raise CatalogError(f"catalog[{spec.name!r}]", spec.name, "a name not already in the catalog")
            table[spec.name] = spec
        self._specs = table
        self._namespace = namespace

    @property
    def namespace(self) -> str:
        return self._namespace

    def __getitem__(self, name: str) -> InstrumentSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"Catalog({len(self)} instruments, namespace={self._namespace!r})"

    def full_name(self, spec: InstrumentSpec) -> str:
        """The OpenTelemetry instrument name: namespace plus relative name."""
        prefix = SELF_NAMESPACE if spec.self_metric else self._namespace
        return f"{prefix}.{spec.name}"

    def prometheus_name(self, spec: InstrumentSpec) -> str:
        return prometheus_name(self.full_name(spec), spec.kind, spec.unit)

    def with_namespace(self, namespace: str) -> Catalog:
        """The same instruments under another namespace (``trading`` by default)."""
        return Catalog(self._specs.values(), namespace)

    def extend(self, specs: Iterable[InstrumentSpec]) -> Catalog:
        """A new catalog with ``specs`` added; a duplicate name raises :class:`CatalogError`."""
        return Catalog([*self._specs.values(), *specs], self._namespace)

    def replace(self, name: str, **changes: object) -> Catalog:
        """A new catalog with one spec's fields changed (buckets, limit, attributes...)."""
        if name not in self._specs:
            raise CatalogError("catalog name", name, "one of the catalog's instrument names")
        updated = replace(self._specs[name], **changes)  # type: ignore[arg-type]
        return Catalog([updated if s.name == name else s for s in self._specs.values()], self._namespace)

    def domains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(spec.domain for spec in self._specs.values()))
