"""Catalog → OpenTelemetry views: attribute-key allow-lists, bucket boundaries, series limits.

Views act inside the SDK, after the label policies: they bound what reaches
an aggregation even when code records on the OTel instruments directly. With
a series limit ``L`` (``View(aggregation_cardinality_limit=L)``) the SDK keeps
``L`` distinct attribute sets per instrument; every later attribute set is
recorded into one extra overflow series with the attribute
``otel.metric.overflow=true``, so an instrument exports at most ``L + 1``
series and no measurement is lost.

Per-instrument overrides (``instruments.<name>.*`` in a config file, or the
``instruments=`` argument of :func:`tradetel.configure`) are applied to the
catalog by :func:`apply_overrides` before the views are built.

Example::

    >>> from tradetel.catalog import DEFAULT_CATALOG
    >>> views = build_views(DEFAULT_CATALOG, default_limit=1000)
    >>> len(views) == len(DEFAULT_CATALOG)
    True
    >>> catalog = apply_overrides(DEFAULT_CATALOG, {"orders.filled": {"cardinality_limit": 200}})
    >>> series_limit(catalog["orders.filled"], default_limit=1000)
    200
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from .catalog import Attribute, Catalog, InstrumentSpec, Kind
from .errors import ConfigurationError
from .labels import LabelPolicy, policy_from_config

__all__ = [
    "OVERFLOW_ATTRIBUTE",
    "apply_overrides",
    "build_views",
    "series_bound",
    "series_limit",
]

OVERFLOW_ATTRIBUTE = "otel.metric.overflow"
"""The attribute of the SDK's overflow series, with the value ``True`` (``otel_metric_overflow="true"``)."""

_OVERRIDABLE = ("cardinality_limit", "buckets", "attributes", "keys")


def series_limit(spec: InstrumentSpec, default_limit: int) -> int:
    """The series limit of an instrument: its catalog ``cardinality_limit``, else ``default_limit``."""
    return spec.cardinality_limit or default_limit


def series_bound(spec: InstrumentSpec) -> int | None:
    """The most attribute sets the label policies of ``spec`` can produce, or ``None`` when unbounded.

    It is the product of each attribute's ``bound`` plus one (the attribute
    may be absent). A limit at or above it never overflows; an unbounded
    instrument (free text, client networks) relies on its series limit.
    """
    total = 1
    for attribute in spec.attributes:
        bound = getattr(attribute.policy, "bound", None)
        if not isinstance(bound, int):
            return None
        total *= bound + 1
    return total


def build_views(catalog: Catalog, default_limit: int) -> list[View]:
    """One view per catalog instrument, matched by its full name.

    Each view keeps only the catalog's attribute keys, sets the catalog's
    bucket boundaries on histograms and the instrument's series limit.
    """
    if isinstance(default_limit, bool) or not isinstance(default_limit, int) or default_limit < 1:
        raise ConfigurationError("cardinality_limit", default_limit, "an integer >= 1")
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
                aggregation_cardinality_limit=series_limit(spec, default_limit),
            )
        )
    return views


def apply_overrides(catalog: Catalog, overrides: Mapping[str, Mapping[str, Any]]) -> Catalog:
    """Apply per-instrument overrides from settings or code to the catalog.

    ``overrides`` maps a relative instrument name (``orders.filled``) to a table of:

    - ``cardinality_limit``: the series limit, an integer >= 1;
    - ``buckets``: histogram bucket boundaries, finite and strictly increasing;
    - ``attributes``: ``{key: policy}``, each policy a name, a table (see
      :func:`tradetel.labels.policy_from_config`) or a policy object;
    - ``keys``: the attribute keys to keep, a subset of the catalog's; the
      others are then dropped and counted as unknown keys (strict mode raises).

    Raises:
        ConfigurationError: naming ``instruments.<name>.<field>``, the value and the accepted forms.
    """
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
                update[key] = _buckets(f"{where}.{key}", spec, value)
            elif key == "attributes":
                update[key] = _policies(f"{where}.{key}", spec, value)
            elif key == "keys":
                continue  # applied after the policies, which are checked against every catalog key
            else:
                raise ConfigurationError(f"{where}.{key}", value, "one of " + ", ".join(_OVERRIDABLE))
        if "keys" in changes:
            attributes: tuple[Attribute, ...] = update.get("attributes", spec.attributes)
            update["attributes"] = _keep_keys(f"{where}.keys", spec, attributes, changes["keys"])
            removed = set(changes.get("attributes", {})) - set(changes["keys"])
            if removed:
                raise ConfigurationError(f"{where}.attributes", sorted(removed), f"keys kept by {where}.keys")
        if update:
            catalog = catalog.replace(name, **update)
    return catalog


def _buckets(setting: str, spec: InstrumentSpec, value: object) -> tuple[float, ...]:
    accepted = "a list of finite, strictly increasing numbers"
    if spec.kind is not Kind.HISTOGRAM:
        raise ConfigurationError(setting, value, f"no buckets: {spec.name} is a {spec.kind.value}, not a histogram")
    if not isinstance(value, list | tuple) or not value:
        raise ConfigurationError(setting, value, accepted)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise ConfigurationError(setting, value, accepted)
    boundaries = tuple(float(v) for v in value)
    if any(a >= b for a, b in itertools.pairwise(boundaries)):
        raise ConfigurationError(setting, value, accepted)
    return boundaries


def _policies(setting: str, spec: InstrumentSpec, value: object) -> tuple[Attribute, ...]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(setting, value, "a table of attribute key to policy")
    unknown = sorted(set(value) - set(spec.attribute_keys))
    if unknown:
        raise ConfigurationError(setting, unknown, "keys among " + ", ".join(spec.attribute_keys))
    attributes = []
    for attribute in spec.attributes:
        if attribute.key in value:
            policy: LabelPolicy = policy_from_config(f"{setting}.{attribute.key}", value[attribute.key])
            attribute = Attribute(attribute.key, policy, attribute.description)
        attributes.append(attribute)
    return tuple(attributes)


def _keep_keys(
    setting: str, spec: InstrumentSpec, attributes: tuple[Attribute, ...], value: object
) -> tuple[Attribute, ...]:
    accepted = "a list of attribute keys among " + (", ".join(spec.attribute_keys) or "(none)")
    if isinstance(value, str) or not isinstance(value, list | tuple) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError(setting, value, accepted)
    if set(value) - set(spec.attribute_keys):
        raise ConfigurationError(setting, value, accepted)
    return tuple(a for a in attributes if a.key in value)


def __getattr__(name: str) -> object:
    # tradetel 0.1 exported cardinality_markdown from here; the docs generators live in _docs now.
    if name == "cardinality_markdown":
        from ._docs import cardinality_markdown

        return cardinality_markdown
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
