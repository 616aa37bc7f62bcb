"""A DataDog dashboard and monitors, on exactly the metric and tag names the DogStatsD exporter sends.

Queries are written against catalog names in angle brackets — ``sum:<orders.filled>{$env}`` — and
resolved with :func:`tradetel.exporters.dogstatsd.metric_name`, the exporter's own naming:
counters and gauges under their dotted name, histograms as distributions (``p95:``) plus the exact
``.count`` and ``.sum`` counts. Both files are bodies for DataDog's API (``POST /api/v1/dashboard``,
``POST /api/v1/monitor``, one monitor each).
"""

from __future__ import annotations

import re
from typing import Any

from ..catalog import Catalog
from ..errors import CatalogError
from ._model import Objectives
from ._rules import anchor

__all__ = ["datadog_dashboard", "datadog_metrics", "datadog_monitors"]

_NAME = re.compile(r"<([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)>")
SCOPE = "$env,$service,$exchange,$symbol,$strategy"
TEMPLATE_VARIABLES = ("env", "service", "exchange", "symbol", "strategy")


def _resolver(catalog: Catalog) -> Any:
    from ..exporters.dogstatsd import metric_name

    def resolve(text: str) -> str:
        def name(match: re.Match[str]) -> str:
            spec = catalog.get(match.group(1))
            if spec is None:
                raise CatalogError("ops DataDog query", match.group(1), "the name of an instrument in the catalog")
            return metric_name(catalog.full_name(spec))

        return _NAME.sub(name, text)

    return resolve


# (title, widget type, [(query name, query)], formula or None)
_WIDGETS: tuple[tuple[str, str, tuple[tuple[str, str], ...], str | None], ...] = (
    ("At-risk exposure", "timeseries", (("a", "max:<account.exposure>{$S,kind:at_risk} by {account}"),), None),
    ("Open positions", "query_value", (("a", "sum:<positions.open>{$S}"),), None),
    ("Pending orders", "timeseries", (("a", "sum:<orders.pending>{$S} by {exchange}"),), None),
    (
        "Fill ratio",
        "timeseries",
        (("fills", "sum:<orders.filled>{$S}.as_count()"), ("orders", "sum:<orders.submitted>{$S}.as_count()")),
        "fills / orders",
    ),
    ("Fills by side", "timeseries", (("a", "sum:<orders.filled>{$S} by {side}.as_count()"),), None),
    ("Top rejection reasons", "toplist", (("a", "sum:<orders.rejected>{$S} by {reason}.as_count()"),), None),
    ("Order latency p95", "timeseries", (("a", "p95:<orders.latency>{$S} by {stage}"),), None),
    ("Slippage p50 (bp)", "timeseries", (("a", "p50:<orders.slippage>{$S} by {side}"),), None),
    ("Breaker states", "timeseries", (("a", "max:<risk.circuit_breaker.state>{$S} by {breaker}"),), None),
    ("Consecutive API errors", "timeseries", (("a", "max:<exchange.error_streak>{$S} by {exchange}"),), None),
    ("API errors by type", "timeseries", (("a", "sum:<exchange.errors>{$S} by {error_type}.as_count()"),), None),
    ("Top no-trade reasons", "toplist", (("a", "sum:<risk.no_trade>{$S} by {reason}.as_count()"),), None),
    ("Cycles", "timeseries", (("a", "sum:<strategy.cycles>{$S} by {strategy}.as_count()"),), None),
    ("Cycle duration p95", "timeseries", (("a", "p95:<strategy.cycle.duration>{$S}"),), None),
    ("Stage duration p95", "timeseries", (("a", "p95:<strategy.stage.duration>{$S} by {stage}"),), None),
    ("Market data lag p95", "timeseries", (("a", "p95:<market_data.lag>{$S} by {source}"),), None),
    ("Trades by outcome", "timeseries", (("a", "sum:<trades.closed>{$S} by {outcome}.as_count()"),), None),
    ("R-multiple p50", "timeseries", (("a", "p50:<trades.r_multiple>{$S} by {strategy}"),), None),
    ("Drawdown", "timeseries", (("a", "max:<account.drawdown>{$S} by {account}"),), None),
    (
        "tradetel export failures",
        "timeseries",
        (("a", "sum:<export.failures>{$S} by {exporter,reason}.as_count()"),),
        None,
    ),
    (
        "tradetel measurements dropped",
        "timeseries",
        (("a", "sum:<measurements.dropped>{$S} by {instrument,reason}.as_count()"),),
        None,
    ),
)


def datadog_dashboard(catalog: Catalog, objectives: Objectives) -> dict[str, Any]:
    """The DataDog dashboard (API v1 body): reference 004's operations view and tradetel's health."""
    resolve = _resolver(catalog)
    widgets = []
    for title, kind, queries, formula in _WIDGETS:
        request: dict[str, Any] = {
            "queries": [
                {"data_source": "metrics", "name": name, "query": resolve(query.replace("$S", SCOPE))}
                for name, query in queries
            ],
            "formulas": [{"formula": formula or queries[0][0]}],
            "response_format": "timeseries" if kind == "timeseries" else "scalar",
        }
        if kind == "timeseries":
            request["display_type"] = "line"
        else:
            for query in request["queries"]:
                query["aggregator"] = "sum" if ".as_count()" in query["query"] else "last"
        widgets.append({"definition": {"title": title, "type": kind, "requests": [request]}})
    return {
        "title": "Trading operations (tradetel)",
        "description": "Generated by `tradetel ops generate` from the instrument catalog. Do not edit.",
        "layout_type": "ordered",
        "template_variables": [{"name": key, "prefix": key, "default": "*"} for key in TEMPLATE_VARIABLES],
        "widgets": widgets,
    }


def datadog_monitors(catalog: Catalog, objectives: Objectives, runbook_url: str) -> list[dict[str, Any]]:
    """The monitors (API v1 bodies) of reference 004's and 003's alerts and of tradetel's health."""
    resolve = _resolver(catalog)
    o = objectives
    monitors = (
        ("CircuitBreakerTripped", "avg(last_5m):max:<risk.circuit_breaker.state>{*} by {breaker} >= 1", 1),
        (
            "ExchangeAPIErrorBurst",
            "max(last_5m):max:<exchange.error_streak>{*} by {exchange} >= " + str(o.api_consecutive_errors),
            o.api_consecutive_errors,
        ),
        (
            "LowFillRatio",
            "sum(last_30m):sum:<orders.filled>{*}.as_count() / sum:<orders.submitted>{*}.as_count() < "
            + f"{o.low_fill_ratio_alert:g}",
            o.low_fill_ratio_alert,
        ),
        (
            "HighExposure",
            "avg(last_5m):max:<account.exposure>{kind:at_risk} by {account} > " + f"{o.high_exposure_alert:g}",
            o.high_exposure_alert,
        ),
        (
            "ExcessiveNoTrade",
            "sum(last_10m):sum:<risk.no_trade>{*}.as_count() / sum:<strategy.cycles>{*}.as_count() > "
            + f"{o.no_trade_alert:g}",
            o.no_trade_alert,
        ),
        (
            "NoActiveBotsRunning",
            "max(last_5m):sum:<platform.bots>{status:running} <= 0",
            0,
        ),
        (
            "HighMarketDataLag",
            "percentile(last_5m):p95:<market_data.lag>{*} by {source} > " + f"{o.market_data_lag_seconds:g}",
            o.market_data_lag_seconds,
        ),
        (
            "HighRedisErrorRate",
            "sum(last_5m):sum:<storage.errors>{system:redis}.as_rate() > 0.1",
            0.1,
        ),
        (
            "HighPortfolioDrawdown",
            "avg(last_5m):max:<account.drawdown>{*} by {account} > " + f"{o.drawdown:g}",
            o.drawdown,
        ),
        (
            "TradetelExportFailing",
            "sum(last_10m):sum:<export.failures>{*} by {exporter}.as_count() > 0",
            0,
        ),
    )
    out = []
    for name, query, threshold in monitors:
        out.append(
            {
                "name": f"[tradetel] {name}",
                "type": "query alert",
                "query": resolve(query),
                "message": f"{name}: see the runbook, {runbook_url}#{anchor(name)}",
                "tags": ["tradetel", f"alert:{anchor(name)}"],
                "options": {
                    "thresholds": {"critical": threshold},
                    "notify_no_data": False,
                    "require_full_window": False,
                    "include_tags": True,
                },
                "priority": 2,
            }
        )
    return out


def datadog_metrics(*bodies: Any) -> set[str]:
    """Every metric name the dashboard and monitor bodies query."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "query" and isinstance(value, str):
                    names.update(re.findall(r"(?:^|[:(\s/])([a-z_]+(?:\.[a-z0-9_]+)+)\{", value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for body in bodies:
        walk(body)
    return names
