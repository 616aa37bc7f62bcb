"""Catalog → OpenTelemetry views: attribute-key allow-lists, bucket boundaries, series limits.

Views act inside the SDK, after the label policies: they bound what reaches
an aggregation even when code records on the OTel instruments directly.

Example::

    >>> from tradetel.catalog import DEFAULT_CATALOG
    >>> views = build_views(DEFAULT_CATALOG, default_limit=1000)
    >>> len(views) == len(DEFAULT_CATALOG)
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from .catalog import Catalog, InstrumentSpec, Kind
from .errors import ConfigurationError

__all__ = ["apply_overrides", "build_views"]

_OVERRIDABLE = ("cardinality_limit", "buckets")


def build_views(catalog: Catalog, default_limit: int) -> list[View]:
    """One view per catalog instrument, matched by its full name."""
    views = []
    for spec in catalog.values():
        views.append(
            View(
                instrument_name=catalog.full_name(spec),
                attribute_keys=set(spec.attribute_keys),
                aggregation=(
                    ExplicitBucketHistogramAggregation(boundaries=list(spec.buckets or ()))
                    if spec.kind is Kind.HISTOGRAM
                    else None
                ),
                aggregation_cardinality_limit=spec.cardinality_limit or default_limit,
            )
        )
    return views


def apply_overrides(catalog: Catalog, overrides: Mapping[str, Mapping[str, Any]]) -> Catalog:
    """Apply per-instrument overrides from settings (``instruments.<name>.cardinality_limit`` / ``.buckets``)."""
    for name, changes in overrides.items():
        where = f"instruments.{name}"
        if name not in catalog:
            raise ConfigurationError(where, name, "the name of a catalog instrument, e.g. 'orders.filled'")
        if not isinstance(changes, Mapping):
            raise ConfigurationError(where, changes, "a table of " + ", ".join(_OVERRIDABLE))
        spec: InstrumentSpec = catalog[name]
        update: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "cardinality_limit":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigurationError(f"{where}.{key}", value, "an integer >= 1")
                update[key] = value
            elif key == "buckets":
                if spec.kind is not Kind.HISTOGRAM:
                    raise ConfigurationError(f"{where}.{key}", value, "buckets only on a histogram")
                if not isinstance(value, list | tuple) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value
                ):
                    raise ConfigurationError(f"{where}.{key}", value, "a list of increasing numbers")
                update[key] = tuple(float(v) for v in value)
            elif key != "attributes":  # attribute policies are handled by the label layer
                raise ConfigurationError(f"{where}.{key}", value, "one of " + ", ".join((*_OVERRIDABLE, "attributes")))
        if update:
            catalog = catalog.replace(name, **update)
    return catalog
