"""Grafana dashboards, built with grafana-foundation-sdk from panel definitions written as data.

Four dashboards: *operations* (reference 004's panels and the execution quality of orders),
*platform* (references 003 and 001), *trades* and *tradetel health*. Each panel names its queries
against the catalog; the dashboard variables (data source, job, instance, exchange, symbol,
strategy) are added as matchers to every series whose instrument has that label, and a panel's
unit comes from the catalog unit of what it shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..catalog import Catalog, Kind
from ._model import Names, Objectives

__all__ = ["DASHBOARDS", "PanelSpec", "dashboards", "grafana_unit"]

VARIABLES = ("job", "instance", "exchange", "symbol", "strategy")
RATE = "$__rate_interval"


@dataclass(frozen=True)
class PanelSpec:
    """One panel: its title, queries as ``(catalog template, legend)`` and how to show them.

    ``unit`` is a Grafana unit, or ``catalog`` for the unit of the first instrument queried (per second
    for a ``rate``); ``fault_only`` marks a panel that by design shows data only during a fault.
    """

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str = "catalog"
    kind: str = "timeseries"
    description: str = ""
    threshold: float | None = None
    fault_only: bool = False


_GRAFANA_UNITS = {"s": "s", "ms": "ms", "By": "bytes", "%": "percent", "[bp]": "suffix: bp"}


def grafana_unit(catalog_unit: str, kind: Kind, rate: bool) -> str:
    """The Grafana unit of a catalog unit: seconds, bytes, ratios as percent, counts as plain numbers."""
    if rate:
        counted = catalog_unit.startswith("{") or catalog_unit == "1"
        return "ops" if counted else _GRAFANA_UNITS.get(catalog_unit, "short")
    if catalog_unit == "1":
        return "percentunit" if kind is Kind.GAUGE else "none"
    return _GRAFANA_UNITS.get(catalog_unit, "short")


def _q(template: str, legend: str = "") -> tuple[str, str]:
    return (template, legend)


def _quantiles(instrument: str, by: str, label: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        _q(
            f"histogram_quantile({q}, sum by (le, {by}) (rate({{{instrument}}}_bucket[{RATE}])))",
            f"p{int(q * 100)} {label}",
        )
        for q in (0.5, 0.95, 0.99)
    )


def _operations(o: Objectives) -> tuple[tuple[str, tuple[PanelSpec, ...]], ...]:
    return (
        (
            "Portfolio health",
            (
                PanelSpec(
                    "Exposure",
                    (
                        _q('max by (account) ({account.exposure}{kind="at_risk"})', "at risk {{account}}"),
                        _q('max by (account) ({account.exposure}{kind="pending"})', "pending {{account}}"),
                        _q("sum({account.exposure})", "total"),
                    ),
                    threshold=o.at_risk_exposure,
                    description=f"Exposure as a share of net asset value; target at risk < {o.at_risk_exposure:.0%}.",
                ),
                PanelSpec(
                    "Positions and pending orders",
                    (_q("sum({positions.open})", "open positions"), _q("sum({orders.pending})", "pending orders")),
                    threshold=o.open_positions,
                ),
            ),
        ),
        (
            "Execution quality",
            (
                PanelSpec(
                    "Fill ratio",
                    (
                        _q(
                            f"sum(increase({{orders.filled}}[{RATE}])) / sum(increase({{orders.submitted}}[{RATE}]))",
                            "fill ratio",
                        ),
                    ),
                    unit="percentunit",
                    threshold=o.fill_ratio,
                    description=f"Orders filled over orders submitted; target > {o.fill_ratio:.0%}.",
                ),
                PanelSpec(
                    "Fills by side",
                    (_q(f"sum by (side) (rate({{orders.filled}}[{RATE}]))", "{{side}}"),),
                ),
                PanelSpec(
                    "Top rejection reasons",
                    (_q(f"topk(5, sum by (reason) (rate({{orders.rejected}}[{RATE}])))", "{{reason}}"),),
                    fault_only=True,
                ),
                PanelSpec(
                    "Order latency",
                    # One quantile per clock: the venue's and the local clock are never mixed in one series.
                    _quantiles("orders.latency", "stage, clock", "{{stage}} ({{clock}})"),
                    description="Decision to submit, submit to acknowledgement, first fill and final state, "
                    "cancel request to confirmation; per clock (exchange or local).",
                ),
                PanelSpec(
                    "Partial fills and cancels",
                    (
                        _q(f"sum(rate({{orders.partially_filled}}[{RATE}]))", "partially filled"),
                        _q(f"sum(rate({{orders.cancelled}}[{RATE}]))", "cancelled"),
                    ),
                ),
                PanelSpec(
                    "Slippage",
                    _quantiles("orders.slippage", "side", "{{side}}"),
                    description="Signed, in basis points; positive is worse than expected.",
                ),
                PanelSpec(
                    "Order fill ratio per order",
                    (
                        _q(
                            f"sum(rate({{orders.fill_ratio}}_sum[{RATE}]))"
                            f" / sum(rate({{orders.fill_ratio}}_count[{RATE}]))",
                            "mean",
                        ),
                    ),
                    unit="percentunit",
                ),
            ),
        ),
        (
            "Circuit breakers",
            (
                PanelSpec(
                    "Breaker states",
                    (_q("max by (breaker) ({risk.circuit_breaker.state})", "{{breaker}}"),),
                    unit="none",
                    threshold=1,
                    description="0 closed (safe), 0.5 half-open, 1 open (tripped).",
                ),
                PanelSpec(
                    "Breaker trips",
                    (_q(f"sum by (breaker) (rate({{risk.circuit_breaker.trips}}[{RATE}]))", "{{breaker}}"),),
                    fault_only=True,
                ),
            ),
        ),
        (
            "Exchange API health",
            (
                PanelSpec(
                    "Consecutive errors",
                    (_q("max by (exchange) ({exchange.error_streak})", "{{exchange}}"),),
                    threshold=o.api_consecutive_errors,
                ),
                PanelSpec(
                    "Errors by type",
                    (_q(f"sum by (error_type) (rate({{exchange.errors}}[{RATE}]))", "{{error_type}}"),),
                    fault_only=True,
                ),
                PanelSpec("API latency", _quantiles("exchange.request.duration", "exchange", "{{exchange}}")),
            ),
        ),
        (
            "No-trade",
            (
                PanelSpec(
                    "Top no-trade reasons",
                    (_q(f"topk(10, sum by (reason) (rate({{risk.no_trade}}[{RATE}])))", "{{reason}}"),),
                ),
                PanelSpec(
                    "Cycles per minute",
                    (
                        _q(f"sum by (strategy) (rate({{strategy.cycles}}[{RATE}])) * 60", "{{strategy}}"),
                        _q(f'sum(rate({{strategy.cycles}}{{status="ok"}}[{RATE}])) * 60', "ok"),
                    ),
                    unit="short",
                ),
            ),
        ),
        (
            "Latency and performance",
            (
                PanelSpec(
                    "Cycle duration",
                    (
                        _q(
                            f"sum(rate({{strategy.cycle.duration}}_sum[{RATE}]))"
                            f" / sum(rate({{strategy.cycle.duration}}_count[{RATE}]))",
                            "mean",
                        ),
                        _q(
                            f"histogram_quantile(0.95, sum by (le) (rate({{strategy.cycle.duration}}_bucket[{RATE}])))",
                            "p95",
                        ),
                    ),
                ),
                PanelSpec(
                    "Stage timings",
                    (
                        _q(
                            f"sum by (stage) (rate({{strategy.stage.duration}}_sum[{RATE}]))"
                            f" / sum by (stage) (rate({{strategy.stage.duration}}_count[{RATE}]))",
                            "{{stage}}",
                        ),
                    ),
                ),
            ),
        ),
    )


def _platform(o: Objectives) -> tuple[tuple[str, tuple[PanelSpec, ...]], ...]:
    return (
        (
            "Bots and portfolio",
            (
                PanelSpec("Bots by status", (_q("sum by (status) ({platform.bots})", "{{status}}"),), kind="stat"),
                PanelSpec("Portfolio value", (_q("sum by (account) ({account.equity})", "{{account}}"),)),
                PanelSpec("P&L by bot", (_q("sum by (strategy) ({strategy.pnl})", "{{strategy}}"),)),
                PanelSpec(
                    "Trade volume",
                    (_q(f"sum by (exchange) (rate({{orders.notional}}_sum[{RATE}]))", "{{exchange}}"),),
                    unit="short",
                ),
            ),
        ),
        (
            "Market data",
            (
                PanelSpec(
                    "Update rate", (_q(f"sum by (source) (rate({{market_data.updates}}[{RATE}]))", "{{source}}"),)
                ),
                PanelSpec(
                    "Lag",
                    _quantiles("market_data.lag", "source", "{{source}}"),
                    threshold=o.market_data_lag_seconds,
                ),
                PanelSpec(
                    "Websocket connections",
                    (_q("sum by (source) ({market_data.websocket.connections})", "{{source}}"),),
                ),
            ),
        ),
        (
            "HTTP and websockets",
            (
                PanelSpec(
                    "Requests by status class",
                    (_q(f"sum by (status_class) (rate({{http.server.requests}}[{RATE}]))", "{{status_class}}"),),
                ),
                PanelSpec("Request duration", _quantiles("http.server.request.duration", "route", "{{route}}")),
                PanelSpec(
                    "Websocket clients", (_q("sum by (endpoint) ({platform.websocket.clients})", "{{endpoint}}"),)
                ),
            ),
        ),
        (
            "Storage",
            (
                PanelSpec(
                    "Operations",
                    (_q(f"sum by (system, status) (rate({{storage.operations}}[{RATE}]))", "{{system}} {{status}}"),),
                ),
                PanelSpec(
                    "Errors",
                    (
                        _q(
                            f"sum by (system, error_type) (rate({{storage.errors}}[{RATE}]))",
                            "{{system}} {{error_type}}",
                        ),
                    ),
                    fault_only=True,
                ),
                PanelSpec("Operation duration", _quantiles("storage.operation.duration", "system", "{{system}}")),
            ),
        ),
        (
            "Webhooks and signals",
            (
                PanelSpec(
                    "Signals received",
                    (
                        _q(
                            f"sum by (source, signal_type) (rate({{signals.received}}[{RATE}]))",
                            "{{source}} {{signal_type}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Signals rejected",
                    (_q(f"sum by (reason) (rate({{signals.rejected}}[{RATE}]))", "{{reason}}"),),
                ),
                PanelSpec("Processing time", _quantiles("signals.processing.duration", "source", "{{source}}")),
                PanelSpec("In flight", (_q("sum by (source) ({signals.in_flight})", "{{source}}"),)),
            ),
        ),
        (
            "Security and validation",
            (
                PanelSpec(
                    "Rate limited",
                    (_q(f"sum by (route) (rate({{security.rate_limited}}[{RATE}]))", "{{route}}"),),
                ),
                PanelSpec(
                    "Allowlist rejections",
                    (_q(f"sum(rate({{security.allowlist.rejected}}[{RATE}]))", "rejected"),),
                ),
                PanelSpec(
                    "Audit events",
                    (_q(f"sum by (event, result) (rate({{security.audit.events}}[{RATE}]))", "{{event}} {{result}}"),),
                ),
                PanelSpec(
                    "Validation errors",
                    (_q(f"sum by (error_type) (rate({{security.validation.errors}}[{RATE}]))", "{{error_type}}"),),
                ),
            ),
        ),
    )


def _trades(o: Objectives) -> tuple[tuple[str, tuple[PanelSpec, ...]], ...]:
    return (
        (
            "Outcomes",
            (
                PanelSpec(
                    "Wins and losses",
                    (_q(f"sum by (outcome) (increase({{trades.closed}}[{RATE}]))", "{{outcome}}"),),
                    unit="short",
                ),
                PanelSpec(
                    "Win rate",
                    (
                        _q(
                            f'sum(increase({{trades.closed}}{{outcome="win"}}[{RATE}]))'
                            f" / sum(increase({{trades.closed}}[{RATE}]))",
                            "win rate",
                        ),
                    ),
                    unit="percentunit",
                ),
                PanelSpec(
                    "R-multiple distribution",
                    (_q(f"sum by (le) (increase({{trades.r_multiple}}_bucket[{RATE}]))", "{{le}}"),),
                    unit="short",
                    kind="bargauge",
                ),
                PanelSpec("R-multiple", _quantiles("trades.r_multiple", "strategy", "{{strategy}}"), unit="none"),
            ),
        ),
        (
            "Profit and loss",
            (
                PanelSpec(
                    "Realised PnL by strategy", (_q("sum by (strategy) ({trades.realized_pnl})", "{{strategy}}"),)
                ),
                PanelSpec(
                    "Strategy PnL", (_q("sum by (strategy, symbol) ({strategy.pnl})", "{{strategy}} {{symbol}}"),)
                ),
                PanelSpec(
                    "Drawdown",
                    (_q("max by (account) ({account.drawdown})", "{{account}}"),),
                    threshold=o.drawdown,
                ),
            ),
        ),
    )


def _health(o: Objectives) -> tuple[tuple[str, tuple[PanelSpec, ...]], ...]:
    return (
        (
            "Data quality",
            (
                PanelSpec(
                    "Measurements dropped",
                    (
                        _q(
                            f"sum by (instrument, reason) (rate({{measurements.dropped}}[{RATE}]))",
                            "{{instrument}} {{reason}}",
                        ),
                    ),
                    fault_only=True,
                ),
                PanelSpec(
                    "Attributes dropped and folded",
                    (
                        _q(f"sum by (instrument, key) (rate({{attributes.dropped}}[{RATE}]))", "dropped {{key}}"),
                        _q(f"sum by (instrument, key) (rate({{attributes.folded}}[{RATE}]))", "folded {{key}}"),
                    ),
                ),
                PanelSpec(
                    "Cardinality overflow",
                    (_q(f"sum by (instrument) (rate({{cardinality.overflow}}[{RATE}]))", "{{instrument}}"),),
                    fault_only=True,
                ),
            ),
        ),
        (
            "Export",
            (
                PanelSpec(
                    "Export failures",
                    (_q(f"sum by (exporter, reason) (rate({{export.failures}}[{RATE}]))", "{{exporter}} {{reason}}"),),
                    fault_only=True,
                ),
                PanelSpec("Export duration", _quantiles("export.duration", "exporter", "{{exporter}}")),
                PanelSpec(
                    "Exports per minute",
                    (_q(f"sum by (exporter) (rate({{export.duration}}_count[{RATE}])) * 60", "{{exporter}}"),),
                    unit="short",
                ),
            ),
        ),
    )


_Build = Callable[[Objectives], tuple[tuple[str, tuple[PanelSpec, ...]], ...]]
DASHBOARDS: dict[str, tuple[str, _Build]] = {
    "operations": ("Trading operations", _operations),
    "platform": ("Trading platform", _platform),
    "trades": ("Trades", _trades),
    "tradetel-health": ("tradetel health", _health),
}


def _unit(panel: PanelSpec, names: Names) -> str:
    if panel.unit != "catalog":
        return panel.unit
    template = panel.queries[0][0]
    spec = names.spec(names.instruments(template)[0])
    rate = "rate(" in template and "_sum" not in template and "_bucket" not in template
    return grafana_unit(spec.unit, spec.kind, rate)


def dashboards(catalog: Catalog, objectives: Objectives) -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana JSON (a dict), by file name."""
    from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import (
        DataSourceRef,
        Threshold,
        ThresholdsMode,
        VariableOption,
        VariableRefresh,
        VariableSort,
    )

    datasource = DataSourceRef(type_val="prometheus", uid="${datasource}")
    names = Names(catalog, {key: f"${key}" for key in VARIABLES})
    plain = Names(catalog)
    first = plain.family(next(iter(name for name in catalog if name == "orders.submitted"), next(iter(catalog))))
    out: dict[str, dict[str, Any]] = {}
    boards: dict[str, tuple[str, _Build]] = dict(DASHBOARDS)
    if custom_panels(catalog):
        boards["custom"] = ("Your instruments", lambda _: custom_panels(catalog))
    for file, (title, build) in boards.items():
        board = (
            dashboard.Dashboard(title)
            .uid(f"tradetel-{file}")
            .tags(["tradetel", catalog.namespace])
            .refresh("30s")
            .time("now-6h", "now")
            .timezone("browser")
            .editable()
            .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        )
        for key in VARIABLES:
            source = "target_info" if key in ("job", "instance") else first
            query = f"label_values({source}, {key})"
            variable = (
                dashboard.QueryVariable(key)
                .label(key)
                .query({"query": query, "refId": "variable"})
                .datasource(datasource)
                .multi(True)
                .include_all(True)
                .all_value(".*")
                .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
                .sort(VariableSort.ALPHABETICAL_ASC)
                .current(VariableOption(selected=True, text="All", value="$__all"))
            )
            board = board.with_variable(variable)
        ids = iter(range(1, 1000))
        for row_title, panels in build(objectives):
            board = board.with_row(dashboard.Row(row_title).id(next(ids)))
            for panel in panels:
                module = {"timeseries": timeseries, "stat": stat, "bargauge": bargauge}[panel.kind]
                builder = (
                    module.Panel()
                    .id(next(ids))
                    .title(panel.title)
                    .datasource(datasource)
                    .unit(_unit(panel, names))
                    .span(8)
                )
                if panel.description:
                    builder = builder.description(panel.description)
                if panel.threshold is not None:
                    builder = builder.thresholds(
                        dashboard.ThresholdsConfig()
                        .mode(ThresholdsMode.ABSOLUTE)
                        .steps([Threshold(value=None, color="green"), Threshold(value=panel.threshold, color="red")])
                    )
                for index, (template, legend) in enumerate(panel.queries):
                    target = prometheus.Dataquery().expr(names.resolve(template)).ref_id("ABCDEFGH"[index])
                    if panel.kind == "timeseries" and template.startswith("histogram_quantile("):
                        target = target.exemplar(True)  # the buckets' exemplars as dots: order id, trace id
                    if legend:
                        target = target.legend_format(legend)
                    builder = builder.with_target(target)
                board = board.with_panel(builder)
        out[file] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return out


def panel_specs(objectives: Objectives) -> dict[str, list[tuple[str, PanelSpec]]]:
    """Every panel of every dashboard with its row title, for tests and docs."""
    return {
        file: [(row, panel) for row, panels in build(objectives) for panel in panels]
        for file, (_, build) in DASHBOARDS.items()
    }


def custom_panels(catalog: Catalog) -> tuple[tuple[str, tuple[PanelSpec, ...]], ...]:
    """A row per domain of the instruments the user added to the default catalog, one generic panel each."""
    from ..catalog import DEFAULT_CATALOG

    rows: dict[str, list[PanelSpec]] = {}
    for name, spec in catalog.items():
        if name in DEFAULT_CATALOG:
            continue
        keys = ", ".join(spec.attribute_keys)
        by = f"sum by ({keys})" if keys else "sum"
        legend = " ".join(f"{{{{{key}}}}}" for key in spec.attribute_keys) or name
        if spec.kind is Kind.COUNTER:
            queries: tuple[tuple[str, str], ...] = (_q(f"{by} (rate({{{name}}}[{RATE}]))", legend),)
        elif spec.kind is Kind.HISTOGRAM:
            queries = _quantiles(name, keys or "job", legend)
        else:
            queries = (_q(f"{by} ({{{name}}})", legend),)
        rows.setdefault(spec.domain, []).append(PanelSpec(spec.description.rstrip("."), queries))
    return tuple((domain, tuple(panels)) for domain, panels in rows.items())
