"""The instrument catalog: one declarative table, the single source of truth.

Every instrument tradetel knows is an :class:`InstrumentSpec` row: a name
relative to the namespace (``orders.filled`` becomes ``trading.orders.filled``),
a kind, a unit, a description, the attribute keys it accepts with their label
policies and, for histograms, bucket boundaries chosen for the domain. Docs,
``tradetel catalog``, views and backend names are all derived from it.

Example::

    >>> from tradetel.catalog import DEFAULT_CATALOG, InstrumentSpec, Kind
    >>> spec = InstrumentSpec("grid.levels_filled", Kind.COUNTER, "{level}", "Grid levels filled.")
    >>> catalog = DEFAULT_CATALOG.extend([spec]).with_namespace("acme")
    >>> catalog.full_name(spec)
    'acme.grid.levels_filled'
"""

from ._catalog import Attribute, Catalog, InstrumentSpec, Kind
from ._default_catalog import DEFAULT_CATALOG
from .exporters._naming import prometheus_name, prometheus_unit

__all__ = [
    "DEFAULT_CATALOG",
    "Attribute",
    "Catalog",
    "InstrumentSpec",
    "Kind",
    "prometheus_name",
    "prometheus_unit",
]
