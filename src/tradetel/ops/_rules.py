"""Prometheus alerting and recording rules, SLOs with burn-rate alerts, and their promtool unit tests.

All of it is data: an :class:`Alert` carries its expression (written against catalog names), its
runbook and two scenarios, one where it must fire and one where it must stay quiet; an :class:`Slo`
carries the PromQL of its error ratio. :func:`rule_groups` turns them into a Prometheus rules file and
:func:`rule_tests` into the ``promtool test rules`` file that checks every alert both ways.

SLO alerts follow the multi-window, multi-burn-rate method of the Google SRE workbook (chapter
"Alerting on SLOs"), as Sloth and Pyrra implement it: over a 30-day budget, page when the budget burns
14.4 times too fast over 1 h (and 5 m) or 6 times over 6 h (and 30 m), open a ticket at 3 times over
1 d (and 2 h) or once over 3 d (and 6 h). A pair whose threshold would exceed an error ratio of 1 can
never fire (a low objective such as an 85 % fill ratio) and is left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._model import Names, Objectives, duration, histogram_bound

__all__ = ["BURN_WINDOWS", "Alert", "Runbook", "Scenario", "Slo", "alerts", "rule_groups", "rule_tests", "slos"]

JOB = "bot"
INSTANCE = "bot:9464"
TEST_INTERVAL = 60  # seconds between input samples of the promtool tests


@dataclass(frozen=True)
class Runbook:
    """What an alert means, the first three queries to run, and what to do."""

    meaning: str
    queries: tuple[str, str, str]
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    """Input series (``catalog-template{labels}``, promtool values) and the labels of the alerts expected."""

    series: tuple[tuple[str, str], ...]
    alerts: tuple[dict[str, str], ...] = ()
    at: int = 30 * 60  # seconds after the start at which the alert state is checked


@dataclass(frozen=True)
class Alert:
    name: str
    group: str
    expr: str
    for_seconds: int
    severity: str
    summary: str
    description: str
    runbook: Runbook
    fires: Scenario
    quiet: Scenario
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BurnWindow:
    long: int
    short: int
    factor: float
    severity: str


BURN_WINDOWS = (
    BurnWindow(3_600, 300, 14.4, "critical"),
    BurnWindow(21_600, 1_800, 6.0, "critical"),
    BurnWindow(86_400, 7_200, 3.0, "warning"),
    BurnWindow(259_200, 21_600, 1.0, "warning"),
)
SLO_WINDOWS = tuple(sorted({w for pair in BURN_WINDOWS for w in (pair.long, pair.short)}))


@dataclass(frozen=True)
class Slo:
    """A ratio SLO: ``errors`` is the PromQL of the error ratio over ``$window``, by ``job``."""

    name: str
    title: str
    objective: float
    errors: str
    description: str
    runbook: Runbook
    total_series: str  # template of one input series counting all events (for the tests)
    error_series: str  # template of the input series counting bad events, or good events when good=True
    good: bool = False  # error_series counts good events (bucket or fills), not bad ones

    @property
    def budget(self) -> float:
        return 1 - self.objective

    def windows(self) -> tuple[BurnWindow, ...]:
        return tuple(pair for pair in BURN_WINDOWS if pair.factor * self.budget < 1)


def _le(names: Names, instrument: str, bound: float, setting: str) -> str:
    """A matcher for bucket bound ``bound``, as text 0.0.4 (``1``) and OpenMetrics (``1.0``) write it."""
    text = histogram_bound(names.spec(instrument), bound, setting)
    return f'le=~"{text}(\\\\.0)?"' if re.fullmatch(r"[0-9]+", text) else f'le="{text}"'


def slos(objectives: Objectives, names: Names) -> tuple[Slo, ...]:
    """The SLOs of reference 004's targets and of tradetel's own health."""
    ack_le = _le(names, "orders.latency", objectives.order_ack_seconds, "order_ack_seconds")
    ack_bound = histogram_bound(names.spec("orders.latency"), objectives.order_ack_seconds, "order_ack_seconds")
    lag_bound = histogram_bound(
        names.spec("market_data.lag"), objectives.market_data_lag_seconds, "market_data_lag_seconds"
    )
    lag_le = _le(names, "market_data.lag", objectives.market_data_lag_seconds, "market_data_lag_seconds")
    return (
        Slo(
            "fill_ratio",
            "Fill ratio",
            objectives.fill_ratio,
            "clamp_min(1 - sum by (job) (increase({orders.filled}[$window]))"
            " / sum by (job) (increase({orders.submitted}[$window])), 0)",
            f"At least {objectives.fill_ratio:.1%} of submitted orders fill.",
            Runbook(
                "Fewer orders fill than the objective allows: the error budget of unfilled orders is burning.",
                (
                    "sum by (reason) (increase({orders.rejected}[1h]))",
                    "sum by (exchange, symbol) (increase({orders.cancelled}[1h]))",
                    "histogram_quantile(0.5, sum by (le, exchange) (rate({orders.slippage}_bucket[1h])))",
                ),
                (
                    "Read the top rejection reasons: balance, minimum notional and price filters are fixed in config.",
                    "Check whether limit prices sit too far from the book (slippage near zero, many cancels).",
                    "Check exchange health: a degraded venue acknowledges but does not fill.",
                ),
            ),
            '{orders.submitted}{exchange="binance",symbol="BTC/USDT",side="buy",order_type="limit"}',
            '{orders.filled}{exchange="binance",symbol="BTC/USDT",side="buy",order_type="limit"}',
            good=True,
        ),
        Slo(
            "order_ack_latency",
            "Order acknowledgement latency",
            objectives.order_ack_ratio,
            f'1 - sum by (job) (rate({{orders.latency}}_bucket{{stage="ack",{ack_le}}}[$window]))'
            ' / sum by (job) (rate({orders.latency}_count{stage="ack"}[$window]))',
            f"At least {objectives.order_ack_ratio:.1%} of orders are acknowledged within "
            f"{objectives.order_ack_seconds:g} s.",
            Runbook(
                "Orders take longer than the objective to be acknowledged by the exchange.",
                (
                    'histogram_quantile(0.99, sum by (le, exchange) (rate({orders.latency}_bucket{stage="ack"}[5m])))',
                    "histogram_quantile(0.99, sum by (le, exchange, endpoint)"
                    " (rate({exchange.request.duration}_bucket[5m])))",
                    "sum by (exchange) (rate({exchange.rate_limit.hits}[5m]))",
                ),
                (
                    "Find the exchange concerned; compare with its status page and with the API latency.",
                    "Rate-limit hits mean the bot is queueing its own orders: slow the request rate.",
                    "Check the bot host: CPU saturation and event-loop lag delay the submission too.",
                ),
            ),
            '{orders.latency}_count{exchange="binance",symbol="BTC/USDT",order_type="limit",stage="ack"}',
            '{orders.latency}_bucket{exchange="binance",symbol="BTC/USDT",order_type="limit",stage="ack",'
            f'le="{ack_bound}"}}',
            good=True,
        ),
        Slo(
            "market_data_freshness",
            "Market data freshness",
            objectives.market_data_freshness,
            f"1 - sum by (job) (rate({{market_data.lag}}_bucket{{{lag_le}}}[$window]))"
            " / sum by (job) (rate({market_data.lag}_count[$window]))",
            f"At least {objectives.market_data_freshness:.1%} of market data updates are processed within "
            f"{objectives.market_data_lag_seconds:g} s of their timestamp.",
            Runbook(
                "Market data arrives or is processed late: decisions are taken on stale prices.",
                (
                    "histogram_quantile(0.95, sum by (le, source) (rate({market_data.lag}_bucket[5m])))",
                    "sum by (source) ({market_data.websocket.connections})",
                    "sum by (source) (rate({market_data.updates}[5m]))",
                ),
                (
                    "A source with no open websocket: check reconnects and the exchange's stream status.",
                    "Lag on every source: the bot is too slow to consume (check event-loop lag and CPU).",
                    "Check the host clock (NTP): lag is measured against the event's own timestamp.",
                ),
            ),
            '{market_data.lag}_count{source="websocket"}',
            f'{{market_data.lag}}_bucket{{source="websocket",le="{lag_bound}"}}',
            good=True,
        ),
        Slo(
            "exchange_availability",
            "Exchange API availability",
            objectives.exchange_availability,
            'sum by (job) (rate({exchange.requests}{status="error"}[$window]))'
            " / sum by (job) (rate({exchange.requests}[$window]))",
            f"At least {objectives.exchange_availability:.1%} of exchange API calls succeed.",
            Runbook(
                "Exchange API calls fail more often than the objective allows.",
                (
                    "sum by (exchange, error_type) (rate({exchange.errors}[5m]))",
                    "max by (exchange) ({exchange.error_streak})",
                    'sum by (exchange, endpoint) (rate({exchange.requests}{status="error"}[5m]))',
                ),
                (
                    "Timeouts and 5xx on one exchange: the venue is degraded; let the circuit breaker hold.",
                    "Authentication errors: check API keys, permissions and the clock (nonce).",
                    "Rate-limit errors: reduce polling; prefer websockets for order updates.",
                ),
            ),
            '{exchange.requests}{exchange="binance",endpoint="create_order",status="ok"}',
            '{exchange.requests}{exchange="binance",endpoint="create_order",status="error"}',
        ),
        Slo(
            "export_success",
            "Telemetry export success",
            objectives.export_success,
            "sum by (job) (rate({export.failures}[$window])) / sum by (job) (rate({export.duration}_count[$window]))",
            f"At least {objectives.export_success:.1%} of tradetel's pushes to a backend succeed.",
            Runbook(
                "tradetel cannot deliver metrics to a push backend (OTLP collector or DogStatsD agent).",
                (
                    "sum by (exporter, reason) (increase({export.failures}[15m]))",
                    "histogram_quantile(0.99, sum by (le, exporter) (rate({export.duration}_bucket[15m])))",
                    "sum by (exporter) (rate({export.duration}_count[15m]))",
                ),
                (
                    "Check the collector or agent is up and reachable from the bot (`tradetel check`).",
                    "reason=unauthenticated or bad_request: the OTLP headers or endpoint are wrong.",
                    "With cumulative temporality nothing is lost while the backend recovers; with delta, "
                    "intervals that failed are re-sent once, then counted as lost.",
                ),
            ),
            '{export.duration}_count{exporter="otlp"}',
            '{export.failures}{exporter="otlp",reason="unavailable"}',
        ),
    )


def alerts(objectives: Objectives, names: Names, speed: float = 1.0) -> tuple[Alert, ...]:
    """Every threshold alert: reference 004's five, reference 003's four, the targets, and tradetel's health."""
    o = objectives

    def w(seconds: float) -> str:
        return duration(max(seconds / speed, 4 * _SCRAPE_FLOOR))

    breaker = '{risk.circuit_breaker.state}{breaker="api_health"}'
    streak = '{exchange.error_streak}{exchange="binance"}'
    exposure = '{account.exposure}{account="main",kind="at_risk"}'
    drawdown = '{account.drawdown}{account="main"}'
    order = 'exchange="binance",symbol="BTC/USDT",side="buy",order_type="limit"'
    return (
        Alert(
            "CircuitBreakerTripped",
            "trading",
            "max by (job, instance, breaker) ({risk.circuit_breaker.state}) >= 1",
            60,
            "critical",
            "Circuit breaker {{ $labels.breaker }} is open",
            "Trading through {{ $labels.breaker }} is halted on {{ $labels.instance }}.",
            Runbook(
                "A circuit breaker tripped: the bot stopped trading through it to protect the account.",
                (
                    "max by (instance, breaker) ({risk.circuit_breaker.state})",
                    "sum by (breaker, to_state) (increase({risk.circuit_breaker.transitions}[1h]))",
                    "max by (exchange) ({exchange.error_streak})",
                ),
                (
                    "Find which breaker tripped and why: API errors, drawdown, or a risk gate.",
                    "Check exchange API health and rate limits before letting it close.",
                    "Close it only when the cause is gone; a breaker that flaps needs a longer cool-down.",
                ),
            ),
            Scenario(((breaker, "0 1x40"),), ({"breaker": "api_health"},)),
            Scenario(((breaker, "0 1 0x40"),)),
        ),
        Alert(
            "ExchangeAPIErrorBurst",
            "trading",
            f"max by (job, instance, exchange) ({{exchange.error_streak}}) >= {o.api_consecutive_errors}",
            60,
            "warning",
            "Consecutive API errors on {{ $labels.exchange }}",
            f"The last {o.api_consecutive_errors} or more calls to {{{{ $labels.exchange }}}} failed in a row.",
            Runbook(
                "Calls to an exchange keep failing with no success in between.",
                (
                    "max by (instance, exchange) ({exchange.error_streak})",
                    "sum by (exchange, error_type) (rate({exchange.errors}[5m]))",
                    "sum by (exchange, endpoint) (rate({exchange.requests}[5m]))",
                ),
                (
                    "Read the error types: timeouts and 5xx are the venue; auth errors are the bot's keys.",
                    "Check the exchange status page and rate-limit hits.",
                    "Expect the API-health circuit breaker to trip next; check that it does.",
                ),
            ),
            Scenario(((streak, f"0 {o.api_consecutive_errors}x40"),), ({"exchange": "binance"},)),
            Scenario(((streak, f"0 {max(o.api_consecutive_errors - 1, 0)}x40"),)),
        ),
        Alert(
            "LowFillRatio",
            "trading",
            f"sum by (job) (increase({{orders.filled}}[{w(1800)}]))"
            f" / sum by (job) (increase({{orders.submitted}}[{w(1800)}])) < {o.low_fill_ratio_alert}",
            300,
            "warning",
            f"Fill ratio below {o.low_fill_ratio_alert:.0%}",
            f"Fewer than {o.low_fill_ratio_alert:.0%} of the orders submitted in the last "
            f"{w(1800)} filled on {{{{ $labels.job }}}}.",
            Runbook(
                "Most orders do not fill: they are rejected, cancelled or left in the book.",
                (
                    "topk(5, sum by (reason) (increase({orders.rejected}[1h])))",
                    "sum by (exchange, symbol) (increase({orders.cancelled}[1h]))",
                    "sum by (exchange, symbol) ({orders.pending})",
                ),
                (
                    "Check the top rejection reasons (reference 004: liquidity filters, minimum notional).",
                    "Check whether limit prices are too passive for the current spread.",
                    "Check the exchange: acknowledgements without fills point at the venue.",
                ),
            ),
            Scenario(
                ((f"{{orders.submitted}}{{{order}}}", "0+10x60"), (f"{{orders.filled}}{{{order}}}", "0+5x60")),
                ({},),
                at=45 * 60,
            ),
            Scenario(
                ((f"{{orders.submitted}}{{{order}}}", "0+10x60"), (f"{{orders.filled}}{{{order}}}", "0+9x60")),
                at=45 * 60,
            ),
        ),
        Alert(
            "HighExposure",
            "trading",
            f'max by (job, instance, account) ({{account.exposure}}{{kind="at_risk"}}) > {o.high_exposure_alert}',
            120,
            "warning",
            "At-risk exposure of {{ $labels.account }} above " + f"{o.high_exposure_alert:.0%}",
            f"At-risk exposure of account {{{{ $labels.account }}}} is above {o.high_exposure_alert:.0%} "
            "of net asset value.",
            Runbook(
                "The account holds more risk than the alert threshold allows.",
                (
                    "max by (instance, account, kind) ({account.exposure})",
                    "sum by (symbol) ({positions.open})",
                    'sum by (gate, decision) (increase({risk.gate.decisions}{gate="exposure"}[1h]))',
                ),
                (
                    "Check which positions carry the exposure and whether stops are in place.",
                    "Check that the exposure risk gate is enabled and blocking new entries.",
                    "Reduce positions by hand if the gate is not holding.",
                ),
            ),
            Scenario(((exposure, f"0 {o.high_exposure_alert + 0.05:.4g}x40"),), ({"account": "main"},)),
            Scenario(((exposure, f"0 {o.high_exposure_alert - 0.05:.4g}x40"),)),
        ),
        Alert(
            "ExcessiveNoTrade",
            "trading",
            f"sum by (job) (rate({{risk.no_trade}}[{w(300)}]))"
            f" > {o.no_trade_alert} * sum by (job) (rate({{strategy.cycles}}[{w(300)}]))",
            300,
            "warning",
            "Most strategy cycles end without a trade",
            f"More than {o.no_trade_alert:.0%} of the strategy cycles of {{{{ $labels.job }}}} end without a trade.",
            Runbook(
                "The bot runs but does not trade: risk gates, filters or breakers block almost every cycle.",
                (
                    "topk(10, sum by (reason) (rate({risk.no_trade}[1h])))",
                    "max by (breaker) ({risk.circuit_breaker.state})",
                    'sum by (gate) (rate({risk.gate.decisions}{decision="block"}[1h]))',
                ),
                (
                    "Read the top no-trade reasons.",
                    "Check circuit breaker states.",
                    "Review the risk policy: a threshold may be too tight for the current market.",
                ),
            ),
            Scenario(
                (
                    ('{strategy.cycles}{strategy="grid",status="ok"}', "0+10x60"),
                    ('{risk.no_trade}{strategy="grid",reason="spread"}', "0+9x60"),
                ),
                ({},),
            ),
            Scenario(
                (
                    ('{strategy.cycles}{strategy="grid",status="ok"}', "0+10x60"),
                    ('{risk.no_trade}{strategy="grid",reason="spread"}', "0+2x60"),
                ),
            ),
        ),
        Alert(
            "NoActiveBotsRunning",
            "platform",
            'sum by (job) ({platform.bots}{status="running"}) == 0',
            300,
            "critical",
            "No bot is running",
            "The platform {{ $labels.job }} reports no bot in the running state.",
            Runbook(
                "The platform hosts no running bot: nothing trades.",
                (
                    "sum by (status) ({platform.bots})",
                    "sum by (strategy) (rate({strategy.cycles}[5m]))",
                    'sum by (status) (rate({strategy.cycles}{status="error"}[15m]))',
                ),
                (
                    "Check whether the bots were stopped on purpose (deployment, maintenance).",
                    "Check the bots in error state and their logs.",
                    "Restart one bot and watch its cycles resume.",
                ),
            ),
            Scenario((('{platform.bots}{status="running"}', "2 0x40"),), ({},)),
            Scenario((('{platform.bots}{status="running"}', "2 1x40"),)),
        ),
        Alert(
            "HighMarketDataLag",
            "platform",
            f"histogram_quantile(0.95, sum by (job, source, le) (rate({{market_data.lag}}_bucket[{w(300)}])))"
            f" > {o.market_data_lag_seconds:g}",
            120,
            "warning",
            "Market data from {{ $labels.source }} lags",
            f"The 95th percentile of market data lag from {{{{ $labels.source }}}} is above "
            f"{o.market_data_lag_seconds:g} s.",
            Runbook(
                "Market data is processed late (reference 003: p95 above 5 s).",
                (
                    "histogram_quantile(0.95, sum by (le, source) (rate({market_data.lag}_bucket[5m])))",
                    "sum by (source) ({market_data.websocket.connections})",
                    "sum by (symbol) (rate({market_data.updates}[5m]))",
                ),
                (
                    "Check the websocket connections of that source and reconnect storms.",
                    "Check the bot's event-loop lag and CPU: a slow consumer lags every source.",
                    "Check the host clock.",
                ),
            ),
            _lag_scenario(names, fast=False),
            _lag_scenario(names, fast=True),
        ),
        Alert(
            "HighRedisErrorRate",
            "platform",
            f'sum by (job) (rate({{storage.errors}}{{system="redis"}}[{w(300)}])) > 0.1',
            60,
            "warning",
            "Redis errors on {{ $labels.job }}",
            "More than 0.1 Redis errors per second on {{ $labels.job }}.",
            Runbook(
                "The bot's Redis calls fail (reference 003: connection errors).",
                (
                    'sum by (error_type) (rate({storage.errors}{system="redis"}[5m]))',
                    'sum by (operation, status) (rate({storage.operations}{system="redis"}[5m]))',
                    "histogram_quantile(0.99, sum by (le)"
                    ' (rate({storage.operation.duration}_bucket{system="redis"}[5m])))',
                ),
                (
                    "Check Redis is up, its memory and max clients.",
                    "Connection errors: check the network path and the connection pool size.",
                    "Timeouts: check slow commands (SLOWLOG) and key sizes.",
                ),
            ),
            Scenario((('{storage.errors}{system="redis",error_type="connection"}', "0+60x40"),), ({},)),
            Scenario((('{storage.errors}{system="redis",error_type="connection"}', "0+1x40"),)),
        ),
        Alert(
            "HighPortfolioDrawdown",
            "platform",
            f"max by (job, instance, account) ({{account.drawdown}}) > {o.drawdown}",
            300,
            "critical",
            "Drawdown of {{ $labels.account }} above " + f"{o.drawdown:.0%}",
            f"Account {{{{ $labels.account }}}} is more than {o.drawdown:.0%} below its equity peak.",
            Runbook(
                "The account lost more than the drawdown threshold from its peak.",
                (
                    "max by (account) ({account.drawdown})",
                    "sum by (strategy, symbol) ({strategy.pnl})",
                    "sum by (strategy, outcome) (increase({trades.closed}[1d]))",
                ),
                (
                    "Check which strategy lost, and whether the kill switch or a breaker engaged.",
                    "Pause the losing strategy if the loss is outside its expected distribution.",
                    "Review R-multiples of the recent trades before resuming.",
                ),
            ),
            Scenario(((drawdown, f"0 {o.drawdown + 0.05:.4g}x40"),), ({"account": "main"},)),
            Scenario(((drawdown, f"0 {o.drawdown - 0.05:.4g}x40"),)),
        ),
        Alert(
            "OpenPositionsAboveLimit",
            "targets",
            f"sum by (job, instance) ({{positions.open}}) > {o.open_positions}",
            60,
            "warning",
            "More than " + f"{o.open_positions}" + " open positions",
            f"{{{{ $labels.instance }}}} holds more than {o.open_positions} open positions (reference 004 limit).",
            Runbook(
                "The bot holds more positions than its policy allows.",
                (
                    "sum by (instance, symbol) ({positions.open})",
                    "sum by (symbol) (increase({trades.opened}[1h]))",
                    'sum by (gate, decision) (increase({risk.gate.decisions}{gate="positions"}[1h]))',
                ),
                (
                    "Check the position-count risk gate is enabled.",
                    "Check for positions left open by a failed exit (orders rejected or cancelled).",
                    "Close the excess positions by hand if the gate does not hold.",
                ),
            ),
            Scenario((('{positions.open}{symbol="BTC/USDT"}', f"0 {o.open_positions + 1}x40"),), ({},)),
            Scenario((('{positions.open}{symbol="BTC/USDT"}', f"0 {o.open_positions}x40"),)),
        ),
        Alert(
            "AtRiskExposureAboveTarget",
            "targets",
            f'max by (job, instance, account) ({{account.exposure}}{{kind="at_risk"}}) > {o.at_risk_exposure}',
            900,
            "info",
            "At-risk exposure of {{ $labels.account }} above target",
            f"At-risk exposure of account {{{{ $labels.account }}}} has stayed above the {o.at_risk_exposure:.0%} "
            "target for 15 minutes.",
            Runbook(
                "Exposure stays above the operating target (reference 004: below 25 %), though below the alert.",
                (
                    "max by (account, kind) ({account.exposure})",
                    "sum by (symbol) ({positions.open})",
                    "sum by (strategy) ({strategy.pnl})",
                ),
                (
                    "Check whether the exposure is intended (a trend trade) or left over.",
                    "Tighten position sizing if it stays above target.",
                    "Review at the next risk meeting; no action is needed at night.",
                ),
            ),
            Scenario(((exposure, f"0 {o.at_risk_exposure + 0.02:.4g}x40"),), ({"account": "main"},)),
            Scenario(((exposure, f"0 {o.at_risk_exposure - 0.02:.4g}x40"),)),
        ),
        Alert(
            "NoTradeRateAboveTarget",
            "targets",
            f"sum by (job) (rate({{risk.no_trade}}[{w(3600)}]))"
            f" / sum by (job) (rate({{strategy.cycles}}[{w(3600)}])) > {o.no_trade_rate}",
            900,
            "info",
            "No-trade rate above target",
            f"More than {o.no_trade_rate:.0%} of the cycles of {{{{ $labels.job }}}} ended without a trade over the "
            "last hour (reference 004 target).",
            Runbook(
                "The bot trades less than its operating target.",
                (
                    "topk(10, sum by (reason) (rate({risk.no_trade}[1h])))",
                    "sum by (strategy, status) (rate({strategy.cycles}[1h]))",
                    "max by (breaker) ({risk.circuit_breaker.state})",
                ),
                (
                    "Read the top no-trade reasons.",
                    "Decide whether the market or the policy is the cause.",
                    "Adjust the filters if the policy is the cause.",
                ),
            ),
            Scenario(
                (
                    ('{strategy.cycles}{strategy="grid",status="ok"}', "0+10x120"),
                    ('{risk.no_trade}{strategy="grid",reason="spread"}', "0+7x120"),
                ),
                ({},),
                at=90 * 60,
            ),
            Scenario(
                (
                    ('{strategy.cycles}{strategy="grid",status="ok"}', "0+10x120"),
                    ('{risk.no_trade}{strategy="grid",reason="spread"}', "0+3x120"),
                ),
                at=90 * 60,
            ),
        ),
        Alert(
            "TradetelExportFailing",
            "tradetel",
            f"sum by (job, instance, exporter) (increase({{export.failures}}[{w(600)}])) > 0",
            0,
            "warning",
            "tradetel cannot push to {{ $labels.exporter }}",
            "Pushes from {{ $labels.instance }} to {{ $labels.exporter }} fail.",
            Runbook(
                "tradetel's pushes to a backend fail; with cumulative temporality nothing is lost until it recovers.",
                (
                    "sum by (instance, exporter, reason) (increase({export.failures}[15m]))",
                    "histogram_quantile(0.99, sum by (le, exporter) (rate({export.duration}_bucket[15m])))",
                    "sum by (instance, exporter) (rate({export.duration}_count[15m]))",
                ),
                (
                    "Run `tradetel check` on the host: it reaches the collector and the agent.",
                    "reason=unauthenticated or bad_request: fix the OTLP headers or endpoint.",
                    "reason=unavailable: start or fix the collector or agent.",
                ),
            ),
            Scenario(
                (('{export.failures}{exporter="otlp",reason="unavailable"}', "0 0 1 2 3x40"),),
                ({"exporter": "otlp"},),
                at=5 * 60,
            ),
            Scenario((('{export.failures}{exporter="otlp",reason="unavailable"}', "0x40"),), at=5 * 60),
            labels={},
        ),
        Alert(
            "TradetelCardinalityOverflow",
            "tradetel",
            f"sum by (job, instance, instrument) (increase({{cardinality.overflow}}[{w(600)}])) > 0",
            0,
            "warning",
            "Series limit reached on {{ $labels.instrument }}",
            "New label combinations of {{ $labels.instrument }} fold into the overflow series.",
            Runbook(
                "An instrument reached its series limit; new label combinations go to the overflow series.",
                (
                    "sum by (instrument) (increase({cardinality.overflow}[1h]))",
                    "sum by (instrument, key) (increase({attributes.folded}[1h]))",
                    "sum by (instrument, key) (increase({attributes.dropped}[1h]))",
                ),
                (
                    "Find the attribute that explodes (an id or a price in a label) and fix the call site.",
                    "Give the attribute a label policy (TopN, OneOf) in the config file.",
                    "Raise the instrument's cardinality limit only if the series are really wanted.",
                ),
            ),
            Scenario(
                (('{cardinality.overflow}{instrument="trading.orders.filled"}', "0 0 5 10x40"),),
                ({"instrument": "trading.orders.filled"},),
                at=5 * 60,
            ),
            Scenario((('{cardinality.overflow}{instrument="trading.orders.filled"}', "0x40"),), at=5 * 60),
        ),
        Alert(
            "TradetelMeasurementsDropped",
            "tradetel",
            # A drop series is created by its first drop: increase() cannot see that one, the second clause can.
            f"sum by (job, instance, instrument, reason) (increase({{measurements.dropped}}[{w(600)}])) > 0"
            f" or sum by (job, instance, instrument, reason)"
            f" ({{measurements.dropped}} > 0 unless {{measurements.dropped}} offset {w(600)})",
            0,
            "info",
            "Measurements of {{ $labels.instrument }} dropped ({{ $labels.reason }})",
            "The bot recorded values tradetel refused ({{ $labels.reason }}); they are counted, not recorded.",
            Runbook(
                "The bot passes values tradetel cannot record (NaN, negative counts, wrong types).",
                (
                    "sum by (instrument, reason) (increase({measurements.dropped}[1h]))",
                    "sum by (instrument, key) (increase({attributes.dropped}[1h]))",
                    "sum by (instrument) (increase({cardinality.overflow}[1h]))",
                ),
                (
                    "Find the call site from the instrument and the reason; the bot's log has one line for it.",
                    "Run the bot's tests with strict=True: the same call raises there.",
                    "Fix the value at its source; a NaN price usually means missing market data.",
                ),
            ),
            Scenario(
                (('{measurements.dropped}{instrument="trading.orders.slippage",reason="nan"}', "_ _ 1x40"),),
                ({"instrument": "trading.orders.slippage", "reason": "nan"},),
                at=5 * 60,
            ),
            Scenario(
                (('{measurements.dropped}{instrument="trading.orders.slippage",reason="nan"}', "0x40"),), at=5 * 60
            ),
        ),
    )


_SCRAPE_FLOOR = 1.0  # seconds: the shortest scrape interval the scaled rules assume


def _lag_scenario(names: Names, fast: bool) -> Scenario:
    bounds = names.spec("market_data.lag").buckets or ()
    # Cumulative buckets growing 10 per minute: all under 0.1 s when fast, all above 10 s when slow.
    lines = []
    for bound in (*bounds, None):
        le = "+Inf" if bound is None else histogram_bound(names.spec("market_data.lag"), bound, "market_data.lag")
        inside = bound is None or (bound >= 0.1 if fast else bound >= 30)
        lines.append((f'{{market_data.lag}}_bucket{{source="websocket",le="{le}"}}', "0+10x40" if inside else "0x40"))
    lines.append(('{market_data.lag}_count{source="websocket"}', "0+10x40"))
    return Scenario(tuple(lines), () if fast else ({"source": "websocket"},))


# --- rules files --------------------------------------------------------------------------------


def _record_name(names: Names, slo: Slo, window: int) -> str:
    return f"tradetel:slo_error_ratio:rate{duration(window)}"


def rule_groups(objectives: Objectives, names: Names, *, runbook_base: str = "", speed: float = 1.0) -> dict[str, Any]:
    """The Prometheus rules file (as a mapping ready for YAML): recording rules, alerts and SLO alerts."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts(objectives, names, speed):
        rule: dict[str, Any] = {"alert": alert.name, "expr": names.resolve(alert.expr)}
        if alert.for_seconds:
            rule["for"] = duration(alert.for_seconds / speed)
        rule["labels"] = {"severity": alert.severity, **alert.labels}
        rule["annotations"] = {
            "summary": alert.summary,
            "description": alert.description,
            "instruments": ", ".join(names.instruments(alert.expr)),
            "runbook_url": f"{runbook_base}#{anchor(alert.name)}",
        }
        groups.setdefault(f"tradetel-{alert.group}", []).append(rule)
    slo_rules: list[dict[str, Any]] = []
    slo_alerts: list[dict[str, Any]] = []
    for slo in slos(objectives, names):
        for window in SLO_WINDOWS:
            expr = names.resolve(slo.errors.replace("$window", duration(window / speed)))
            slo_rules.append({"record": _record_name(names, slo, window), "expr": expr, "labels": {"slo": slo.name}})
        for pair in slo.windows():
            threshold = f"{pair.factor * slo.budget:.6g}"
            long_rule, short_rule = _record_name(names, slo, pair.long), _record_name(names, slo, pair.short)
            slo_alerts.append(
                {
                    "alert": "SLOErrorBudgetBurn",
                    "expr": f'{long_rule}{{slo="{slo.name}"}} > {threshold} and {short_rule}{{slo="{slo.name}"}} > '
                    f"{threshold}",
                    "labels": {
                        "severity": pair.severity,
                        "slo": slo.name,
                        "long_window": duration(pair.long),
                        "short_window": duration(pair.short),
                    },
                    "annotations": {
                        "summary": f"{slo.title}: error budget burning {pair.factor:g}x too fast",
                        "description": f"{slo.description} Over the last {duration(pair.long)} and "
                        f"{duration(pair.short)} the error ratio of {{{{ $labels.job }}}} is above {threshold} "
                        f"({pair.factor:g} times the budget of {slo.budget:.4g}).",
                        "instruments": ", ".join(names.instruments(slo.errors)),
                        "runbook_url": f"{runbook_base}#{anchor('slo-' + slo.name)}",
                    },
                }
            )
    # One group, recordings first: rules of a group run in order, so each alert reads the ratios recorded at
    # the same evaluation. In separate groups the order is not fixed, and at evaluation intervals longer than
    # the 5-minute lookback an alert evaluated first finds no ratio at all.
    groups["tradetel-slo"] = slo_rules + slo_alerts
    return {"groups": [{"name": name, "rules": rules} for name, rules in groups.items()]}


def anchor(title: str) -> str:
    """The GitHub-style anchor of a runbook heading."""
    return re.sub(r"[^a-z0-9-]", "", title.lower().replace(" ", "-").replace("_", "-"))


# --- promtool unit tests ------------------------------------------------------------------------


def _expand(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.([a-z_]+) \}\}", lambda m: labels.get(m.group(1), ""), template)


def _series(names: Names, template: str, job: str) -> str:
    series = names.resolve(template)
    extra = f'job="{job}",instance="{INSTANCE}"'
    if series.endswith("}"):
        return series[:-1] + "," + extra + "}"
    return series + "{" + extra + "}"


def rule_tests(objectives: Objectives, names: Names, rules_file: str, *, runbook_base: str = "") -> dict[str, Any]:
    """The ``promtool test rules`` file: every alert fires in one scenario and stays quiet in another."""
    tests: list[dict[str, Any]] = []
    rules = rule_groups(objectives, names, runbook_base=runbook_base)
    annotations = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    for alert in alerts(objectives, names):
        for scenario, job in ((alert.fires, "firing"), (alert.quiet, "quiet")):
            expected = []
            for labels in scenario.alerts:
                full = {**_by_labels(alert.expr, job), **labels, "severity": alert.severity, **alert.labels}
                notes = annotations[alert.name]["annotations"]
                expected.append(
                    {
                        "exp_labels": full,
                        "exp_annotations": {key: _expand(value, full) for key, value in notes.items()},
                    }
                )
            tests.append(
                {
                    "name": f"{alert.name} {'fires' if scenario is alert.fires else 'stays quiet'}",
                    "interval": f"{TEST_INTERVAL}s",
                    "input_series": [
                        {"series": _series(names, template, job), "values": values}
                        for template, values in scenario.series
                    ],
                    "alert_rule_test": [
                        {"eval_time": duration(scenario.at), "alertname": alert.name, "exp_alerts": expected}
                    ],
                }
            )
    tests.append(_slo_test(objectives, names, annotations, rules))
    return {"rule_files": [rules_file], "evaluation_interval": f"{TEST_INTERVAL}s", "tests": tests}


def _by_labels(expr: str, job: str) -> dict[str, str]:
    """The labels an alert keeps from its ``by (...)`` clause that the scenario sets: job and instance."""
    match = re.search(r"by \(([^)]*)\)", expr)
    keys = {key.strip() for key in match.group(1).split(",")} if match else set()
    labels = {"job": job}
    if "instance" in keys:
        labels["instance"] = INSTANCE
    return labels


def _slo_test(
    objectives: Objectives, names: Names, annotations: dict[str, Any], rules: dict[str, Any]
) -> dict[str, Any]:
    """One group for every SLO: for each window pair a job burning just above its threshold, and one just below.

    Each job burns at a constant rate for longer than the longest window, so the pairs that fire for a
    job are exactly those whose threshold its error ratio exceeds.
    """
    minutes = max(pair.long for pair in BURN_WINDOWS) // 60 + 60
    series: list[dict[str, str]] = []
    expected: list[dict[str, Any]] = []
    slo_alerts = [
        rule for group in rules["groups"] for rule in group["rules"] if rule.get("alert") == "SLOErrorBudgetBurn"
    ]
    for slo in slos(objectives, names):
        for index, pair in enumerate(slo.windows()):
            for side, scale in (("above", 1.25), ("below", 0.8)):
                ratio = min(pair.factor * slo.budget * scale, 1.0)
                job = f"{slo.name}-{index}-{side}"
                total = 1000
                bad = round(total * ratio)
                counted = total - bad if slo.good else bad
                series.append({"series": _series(names, slo.total_series, job), "values": f"0+{total}x{minutes}"})
                series.append({"series": _series(names, slo.error_series, job), "values": f"0+{counted}x{minutes}"})
                for other in slo.windows():
                    if bad / total > other.factor * slo.budget:
                        labels = {
                            "job": job,
                            "slo": slo.name,
                            "severity": other.severity,
                            "long_window": duration(other.long),
                            "short_window": duration(other.short),
                        }
                        rule = next(
                            r
                            for r in slo_alerts
                            if r["labels"]["slo"] == slo.name and r["labels"]["long_window"] == duration(other.long)
                        )
                        expected.append(
                            {
                                "exp_labels": labels,
                                "exp_annotations": {k: _expand(v, labels) for k, v in rule["annotations"].items()},
                            }
                        )
    return {
        "name": "SLO burn-rate pairs fire above their threshold and stay quiet below it",
        "interval": f"{TEST_INTERVAL}s",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": duration((minutes - 30) * 60), "alertname": "SLOErrorBudgetBurn", "exp_alerts": expected}
        ],
    }


def sorted_alert_names(rules: dict[str, Any]) -> Sequence[str]:
    return sorted({rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule})
