"""What the operator artefacts are generated from: catalog names, objectives, durations.

Every PromQL expression in :mod:`tradetel.ops` is written against catalog names in braces —
``rate({orders.filled}[5m])`` — and resolved here to the Prometheus family name the exporter
serves for the user's catalog and namespace (``trading_orders_filled_total``). A name the catalog
does not have raises :class:`~tradetel.errors.CatalogError` at generation, so a renamed instrument
can never leave a panel or a rule pointing at nothing.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..catalog import Catalog, InstrumentSpec, Kind
from ..errors import CatalogError, ConfigurationError

__all__ = ["Names", "Objectives", "duration", "load_objectives"]

# A catalog name in braces: lower-case dotted words, nothing else (PromQL matchers always hold an operator).
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)\}")
_SELECTOR_LABELS = ("job", "instance")


class Names:
    """Resolves ``{orders.filled}`` placeholders to the Prometheus names of one catalog.

    Args:
        catalog: the user's catalog, namespace included.
        filters: dashboard variables to add as matchers (``{"exchange": "$exchange"}``); each is added
            only to series whose instrument has that attribute (``job`` and ``instance`` to all).
    """

    def __init__(self, catalog: Catalog, filters: Mapping[str, str] | None = None) -> None:
        self.catalog = catalog
        self.filters = dict(filters or {})
        self.used: set[str] = set()

    def spec(self, name: str) -> InstrumentSpec:
        spec = self.catalog.get(name)
        if spec is None:
            raise CatalogError("ops query", name, "the name of an instrument in the catalog")
        return spec

    def family(self, name: str) -> str:
        """The Prometheus family name of catalog instrument ``name``."""
        self.used.add(name)
        return self.catalog.prometheus_name(self.spec(name))

    def resolve(self, template: str) -> str:
        """``template`` with every ``{catalog.name}`` replaced by its family name (and the dashboard matchers).

        A ``_bucket``/``_sum``/``_count`` written right after the placeholder stays a suffix of the
        name; matchers written after it (``{orders.rejected}{reason="x"}``) share one pair of braces
        with the filters.
        """
        out: list[str] = []
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            out.append(template[position : match.start()])
            name = match.group(1)
            suffix = re.match(r"_(bucket|sum|count)\b", template[match.end() :])
            tail = suffix.group(0) if suffix else ""
            position = match.end() + len(tail)
            out.append(self.family(name) + tail)
            keys = set(self.spec(name).attribute_keys) | set(_SELECTOR_LABELS)
            matchers = ",".join(f'{key}=~"{value}"' for key, value in self.filters.items() if key in keys)
            if matchers and template.startswith("{", position):
                out.append("{" + matchers + ",")
                position += 1
            elif matchers:
                out.append("{" + matchers + "}")
        out.append(template[position:])
        return "".join(out)

    def instruments(self, template: str) -> tuple[str, ...]:
        """The catalog names a template reads, in order of appearance."""
        return tuple(dict.fromkeys(_PLACEHOLDER.findall(template)))


def duration(seconds: float) -> str:
    """A Prometheus duration: ``300`` → ``5m``, ``90`` → ``1m30s``, ``86400`` → ``1d``."""
    remaining = max(1, round(seconds))
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if remaining >= size:
            count, remaining = divmod(remaining, size)
            parts.append(f"{count}{unit}")
    return "".join(parts)


@dataclass(frozen=True)
class Objectives:
    """Targets the rules, SLOs and dashboards are generated with; reference 004's operating targets by default.

    Override any of them in the config file's ``[ops]`` table (``ops.fill_ratio = 0.9``) or with
    ``tradetel ops generate --set fill_ratio=0.9``.
    """

    fill_ratio: float = 0.85
    """SLO: share of submitted orders that fill (reference 004: > 85 %)."""
    at_risk_exposure: float = 0.25
    """Target: at-risk exposure as a share of net asset value stays below this (reference 004: < 25 %)."""
    open_positions: int = 5
    """Target: open positions at most this many (reference 004: <= 5)."""
    api_consecutive_errors: int = 2
    """Target: consecutive exchange API errors stay below this (reference 004: < 2)."""
    no_trade_rate: float = 0.5
    """Target: share of strategy cycles ending without a trade stays below this (reference 004: < 50 %)."""
    order_ack_seconds: float = 1.0
    """SLO threshold: an order acknowledged within this many seconds is a good event (a bucket bound)."""
    order_ack_ratio: float = 0.99
    """SLO: share of orders acknowledged within ``order_ack_seconds``."""
    market_data_lag_seconds: float = 5.0
    """SLO threshold: a market data update processed within this many seconds is fresh (a bucket bound)."""
    market_data_freshness: float = 0.99
    """SLO: share of market data updates that are fresh."""
    exchange_availability: float = 0.995
    """SLO: share of exchange API calls that succeed."""
    export_success: float = 0.99
    """SLO: share of tradetel's pushes to a backend that succeed."""
    drawdown: float = 0.15
    """Alert: drawdown from the equity peak above this share (reference 003: 15 %)."""
    low_fill_ratio_alert: float = 0.70
    """Alert: fill ratio over 30 minutes below this share (reference 004's LowFillRatio)."""
    high_exposure_alert: float = 0.30
    """Alert: at-risk exposure above this share (reference 004's HighExposure)."""
    no_trade_alert: float = 0.80
    """Alert: share of cycles without a trade over 5 minutes above this (reference 004's ExcessiveNoTrade)."""

    def validated(self) -> Objectives:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigurationError(f"ops.{item.name}", value, "a finite number")
            ratio = item.name in _RATIOS
            if ratio and not 0 < value < 1:
                raise ConfigurationError(f"ops.{item.name}", value, "a share between 0 and 1 (exclusive)")
            if not ratio and value <= 0:
                raise ConfigurationError(f"ops.{item.name}", value, "a positive number")
        return self


_RATIOS = frozenset(
    {
        "fill_ratio",
        "at_risk_exposure",
        "no_trade_rate",
        "order_ack_ratio",
        "market_data_freshness",
        "exchange_availability",
        "export_success",
        "drawdown",
        "low_fill_ratio_alert",
        "high_exposure_alert",
        "no_trade_alert",
    }
)


def load_objectives(
    config_file: str | os.PathLike[str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Objectives:
    """The default objectives, updated from the config file's ``ops`` table, then from ``overrides``."""
    values: dict[str, Any] = {}
    if config_file is not None:
        from ..config import read_config_file

        values.update(read_config_file(config_file).get("ops", {}))
    values.update(overrides or {})
    known = {item.name: item for item in fields(Objectives)}
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in known:
            raise ConfigurationError(f"ops.{key}", raw, "one of " + ", ".join(sorted(known)))
        changes[key] = _number(key, raw)
    return replace(Objectives(), **changes).validated()


def _number(key: str, raw: Any) -> float | int:
    if isinstance(raw, str):
        try:
            return int(raw) if re.fullmatch(r"[0-9]+", raw.strip()) else float(raw)
        except ValueError:
            raise ConfigurationError(f"ops.{key}", raw, "a number") from None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigurationError(f"ops.{key}", raw, "a number")
    return raw


def histogram_bound(spec: InstrumentSpec, value: float, setting: str) -> str:
    """The ``le`` label text of bucket bound ``value`` of a histogram, which must be one of its bounds."""
    if spec.kind is not Kind.HISTOGRAM or spec.buckets is None or value not in spec.buckets:
        bounds = ", ".join(f"{bound:g}" for bound in spec.buckets or ())
        raise ConfigurationError(f"ops.{setting}", value, f"one of the bucket bounds of {spec.name}: {bounds}")
    return f"{float(value):g}" if not float(value).is_integer() else str(int(value))


def catalog_units(names: Iterable[str], catalog: Catalog) -> dict[str, str]:
    return {name: catalog[name].unit for name in names}
