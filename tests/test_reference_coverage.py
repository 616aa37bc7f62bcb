"""Every metric the five reference bots track has a home in the default catalog.

``REFERENCE_METRICS`` lists, per reference document (``references/000`` to
``004``), each metric it names and the catalog instrument plus attribute keys
that carry it. ``docs/reference-coverage.md`` is the same table for people; a
test keeps both in step.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tradetel.catalog import DEFAULT_CATALOG, Kind
from tradetel.labels import ClientAddress

ReferenceRow = tuple[str, str, str, tuple[str, ...]]

REFERENCE_METRICS: tuple[ReferenceRow, ...] = (
    # 000: OrderMetricsReporter, exported as gauges under a prefix
    ("000", "execution.orders.placed", "orders.submitted", ()),
    ("000", "execution.orders.filled", "orders.filled", ()),
    ("000", "execution.orders.cancelled", "orders.cancelled", ()),
    ("000", "execution.orders.rejected", "orders.rejected", ()),
    ("000", "execution.orders.post_only_rejected", "orders.post_only_rejected", ()),
    ("000", "execution.orders.rejection.{reason}", "orders.rejected", ("reason",)),
    ("000", "execution.pending_orders", "orders.pending", ()),
    ("000", "execution.stop_triggers", "orders.stops.triggered", ()),
    ("000", "execution.active_stops", "orders.stops.active", ()),
    # 001: execution service: webhooks
    ("001", "webhook_requests_total", "signals.received", ("source", "symbol", "side")),
    ("001", "webhook_processing_duration", "signals.processing.duration", ("source", "status")),
    ("001", "webhook_validation_failures", "signals.rejected", ("source", "reason")),
    ("001", "webhook_signature_failures", "signals.rejected", ("reason",)),
    ("001", "webhook_confidence_filtered", "signals.rejected", ("reason",)),
    ("001", "webhook_stale_rejected", "signals.rejected", ("reason",)),
    ("001", "active_requests", "signals.in_flight", ()),
    # 001: exchange plugin
    ("001", "orders_total", "orders.submitted", ("exchange", "symbol", "side", "order_type")),
    ("001", "order_execution_duration", "orders.latency", ("exchange", "order_type")),
    ("001", "order_failures", "orders.rejected", ("exchange", "symbol", "reason")),
    ("001", "order_size_usd", "orders.notional", ("exchange", "symbol", "side")),
    ("001", "exchange_connections", "exchange.connections", ()),
    ("001", "exchange_api_calls", "exchange.requests", ("exchange", "endpoint", "status")),
    ("001", "exchange_errors", "exchange.errors", ("exchange", "error_type")),
    # 001: security middleware
    ("001", "rate_limit_requests", "security.rate_limit.checks", ("client", "decision")),
    ("001", "rate_limit_rejections", "security.rate_limited", ("client",)),
    ("001", "circuit_breaker_state", "risk.circuit_breaker.state", ("breaker",)),
    ("001", "circuit_breaker_transitions", "risk.circuit_breaker.transitions", ("breaker", "from_state", "to_state")),
    ("001", "circuit_breaker_rejections", "risk.circuit_breaker.rejections", ("breaker",)),
    ("001", "ip_whitelist_checks", "security.allowlist.checks", ("client", "decision")),
    ("001", "ip_whitelist_rejections", "security.allowlist.rejected", ("client",)),
    ("001", "audit_events", "security.audit.events", ("event", "client", "result")),
    # 001: validation layer
    ("001", "validation_errors", "security.validation.errors", ("error_type", "field")),
    ("001", "normalization_operations", "security.validation.operations", ("operation",)),
    ("001", "nan_replacements", "security.validation.errors", ("error_type", "field")),
    # 002: single-bot Prometheus server: counters
    ("002", "mrben_trades_opened_total", "trades.opened", ("symbol", "side", "strategy")),
    ("002", "mrben_trades_closed_total", "trades.closed", ("symbol", "side", "strategy", "outcome")),
    ("002", "mrben_blocks_total", "risk.no_trade", ("reason",)),
    ("002", "mrben_orders_sent_total", "orders.submitted", ("time_in_force",)),
    # 002: gauges
    ("002", "mrben_equity", "account.equity", ()),
    ("002", "mrben_balance", "account.balance", ()),
    ("002", "mrben_drawdown_pct", "account.drawdown", ()),
    ("002", "mrben_exposure_positions", "positions.open", ()),
    ("002", "mrben_spread_points", "market_data.spread", ()),
    ("002", "mrben_confidence_dyn", "strategy.confidence", ()),
    ("002", "mrben_decision_score", "strategy.decision.score", ()),
    ("002", "mrben_regime_code", "strategy.regime", ("regime",)),
    ("002", "mrben_session_code", "strategy.session", ("session",)),
    # 002: histograms and summary
    ("002", "mrben_trade_r", "trades.r_multiple", ()),
    ("002", "mrben_slippage_points", "orders.slippage", ()),
    ("002", "mrben_order_latency_ms", "orders.latency", ()),
    ("002", "mrben_trade_payout_r", "trades.r_multiple", ()),
    # 002: tracked through its integration points without a metric name of their own
    ("002", "observe_risk_gate(gate, blocked)", "risk.gate.decisions", ("gate", "decision")),
    ("002", "ML/LSTM model accuracy", "strategy.model.accuracy", ("model",)),
    ("002", "volatility", "market_data.volatility", ()),
    # 003: FastAPI platform: bots and portfolio
    ("003", "trading_bots_active_total", "platform.bots", ("status",)),
    ("003", "trading_bot_trades_total", "trades.opened", ("strategy", "symbol", "side")),
    ("003", "trading_bot_pnl_usd", "strategy.pnl", ("strategy", "symbol")),
    ("003", "portfolio_total_value_usd", "account.equity", ()),
    ("003", "portfolio_positions_count", "positions.open", ("symbol",)),
    ("003", "portfolio_cash_balance_usd", "account.balance", ()),
    # 003: market data and websockets
    ("003", "market_data_updates_total", "market_data.updates", ("symbol", "source")),
    ("003", "market_data_lag_seconds", "market_data.lag", ()),
    ("003", "websocket_connections_active", "platform.websocket.clients", ("endpoint",)),
    # 003: infrastructure
    ("003", "redis_operations_total", "storage.operations", ("system", "operation", "status")),
    ("003", "redis_connection_errors_total", "storage.errors", ("system", "error_type")),
    ("003", "database_queries_total", "storage.operations", ("system", "operation", "collection", "status")),
    ("003", "database_query_duration_seconds", "storage.operation.duration", ("system",)),
    # 003: HTTP metrics of the instrumentator
    ("003", "http_requests_total", "http.server.requests", ("method", "route", "status_class")),
    ("003", "http_request_duration_seconds", "http.server.request.duration", ("method", "route")),
    ("003", "http_request_size_bytes", "http.server.request.body.size", ()),
    ("003", "http_response_size_bytes", "http.server.response.body.size", ()),
    # 004: trading loop
    ("004", "trader_cycle_duration_seconds", "strategy.cycle.duration", ()),
    ("004", "trader_cycle_total", "strategy.cycles", ("status",)),
    ("004", "trader_cycle_stage_count", "strategy.proposals", ("stage",)),
    ("004", "trader_stage_duration_seconds", "strategy.stage.duration", ("stage",)),
    ("004", "exchange_rate_limit_utilization", "exchange.rate_limit.utilization", ()),
    ("004", "trader_exposure_pct", "account.exposure", ("kind",)),
    ("004", "trader_open_positions", "positions.open", ()),
    ("004", "trader_pending_orders", "orders.pending", ()),
    ("004", "trader_fill_ratio", "orders.fill_ratio", ()),
    ("004", "trader_fills_total", "orders.filled", ("side",)),
    ("004", "trader_order_rejections_total", "orders.rejected", ("reason",)),
    ("004", "trader_circuit_breaker_state", "risk.circuit_breaker.state", ("breaker",)),
    ("004", "trader_circuit_breaker_trips_total", "risk.circuit_breaker.trips", ("breaker",)),
    ("004", "exchange_api_errors_total", "exchange.errors", ("error_type",)),
    ("004", "exchange_api_consecutive_errors", "exchange.error_streak", ()),
    ("004", "trader_no_trade_total", "risk.no_trade", ("reason",)),
    ("004", "exchange_rate_limit_violations_total", "exchange.rate_limit.hits", ()),
    ("004", "exchange_api_latency_seconds", "exchange.request.duration", ()),
)

MIN_ROWS = {"000": 9, "001": 25, "002": 20, "003": 17, "004": 18}
"""Metrics each reference names: 000 9; 001 7 webhook, 7 exchange, 8 security, 3 validation; 002 17 named
plus 3 tracked without a name; 003 13 custom plus 4 HTTP; 004 16 listed plus 2 more in its type summary."""

DESIGN_DOMAINS = (
    "orders",
    "trades",
    "positions",
    "account",
    "risk",
    "exchange",
    "market_data",
    "strategy",
    "signals",
    "security",
    "tradetel",
)

COVERAGE_DOC = Path(__file__).resolve().parent.parent / "docs" / "reference-coverage.md"

ROW_IDS = [f"{ref}:{metric}" for ref, metric, _, _ in REFERENCE_METRICS]


@pytest.mark.parametrize(("ref", "metric", "name", "keys"), REFERENCE_METRICS, ids=ROW_IDS)
def test_reference_metric_has_a_catalog_home(ref: str, metric: str, name: str, keys: tuple[str, ...]) -> None:
    """Each reference metric maps onto an instrument that exists in the default catalog."""
    assert name in DEFAULT_CATALOG, f"{ref} {metric}: {name} is not in the catalog"
    assert not DEFAULT_CATALOG[name].self_metric


@pytest.mark.parametrize(("ref", "metric", "name", "keys"), REFERENCE_METRICS, ids=ROW_IDS)
def test_reference_attributes_are_accepted(ref: str, metric: str, name: str, keys: tuple[str, ...]) -> None:
    """The attribute keys that carry a reference metric's labels are accepted by its instrument."""
    missing = set(keys) - set(DEFAULT_CATALOG[name].attribute_keys)
    assert not missing, f"{ref} {metric}: {name} lacks {sorted(missing)}"


@pytest.mark.parametrize(("ref", "minimum"), sorted(MIN_ROWS.items()))
def test_every_reference_is_listed_in_full(ref: str, minimum: int) -> None:
    """Each reference document has at least as many rows as the metrics it names."""
    counts = Counter(row[0] for row in REFERENCE_METRICS)
    assert counts[ref] >= minimum


def test_reference_rows_are_unique() -> None:
    """No reference metric is listed twice."""
    pairs = [(ref, metric) for ref, metric, _, _ in REFERENCE_METRICS]
    assert len(pairs) == len(set(pairs))


@pytest.mark.parametrize("domain", DESIGN_DOMAINS)
def test_every_design_domain_has_instruments(domain: str) -> None:
    """Every domain of the design's catalog table has at least one instrument."""
    assert domain in DEFAULT_CATALOG.domains()


def test_every_histogram_has_explicit_increasing_buckets() -> None:
    """Every histogram declares its own finite, strictly increasing bucket boundaries."""
    for spec in DEFAULT_CATALOG.values():
        if spec.kind is Kind.HISTOGRAM:
            assert spec.buckets, spec.name
            assert list(spec.buckets) == sorted(set(spec.buckets)), spec.name
        else:
            assert spec.buckets is None, spec.name


def test_every_description_is_a_sentence() -> None:
    """Every instrument and attribute has a non-empty description ending with a period."""
    for spec in DEFAULT_CATALOG.values():
        assert spec.description.strip().endswith("."), spec.name
        for attribute in spec.attributes:
            assert attribute.description.strip().endswith("."), f"{spec.name}.{attribute.key}"


def test_units_follow_conventions() -> None:
    """Durations are in seconds and units are UCUM: no milliseconds, percent or points."""
    for spec in DEFAULT_CATALOG.values():
        assert spec.unit not in {"ms", "%", "pct", "points", ""}, spec.name
        if spec.name.endswith((".duration", ".latency", ".lag")):
            assert spec.unit == "s", spec.name


def test_domains_are_contiguous() -> None:
    """The table is ordered by domain: each domain's instruments are adjacent."""
    order = [spec.domain for spec in DEFAULT_CATALOG.values()]
    collapsed = [domain for i, domain in enumerate(order) if i == 0 or order[i - 1] != domain]
    assert len(collapsed) == len(set(collapsed)), collapsed


def test_no_name_is_also_a_prefix() -> None:
    """No instrument name is also the parent of another, so dotted handle access stays unambiguous."""
    names = set(DEFAULT_CATALOG)
    for name in names:
        assert not any(other.startswith(name + ".") for other in names), name


def test_no_unbounded_identifiers_as_attributes() -> None:
    """No instrument accepts ids, prices or raw addresses as attribute keys; clients are always folded."""
    forbidden = {"order_id", "trade_id", "user_id", "client_ip", "ip", "price", "bot_id", "session_id"}
    for spec in DEFAULT_CATALOG.values():
        assert not forbidden & set(spec.attribute_keys), spec.name
        for attribute in spec.attributes:
            if attribute.key == "client":
                assert isinstance(attribute.policy, ClientAddress), spec.name


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("orders.submitted", Kind.COUNTER),
        ("orders.rejected", Kind.COUNTER),
        ("orders.pending", Kind.UP_DOWN_COUNTER),
        ("orders.latency", Kind.HISTOGRAM),
        ("orders.slippage", Kind.HISTOGRAM),
        ("trades.closed", Kind.COUNTER),
        ("trades.r_multiple", Kind.HISTOGRAM),
        ("account.equity", Kind.GAUGE),
        ("risk.circuit_breaker.trips", Kind.COUNTER),
        ("exchange.request.duration", Kind.HISTOGRAM),
        ("market_data.lag", Kind.HISTOGRAM),
        ("strategy.cycle.duration", Kind.HISTOGRAM),
    ],
)
def test_key_instruments_have_the_kind_the_references_imply(name: str, kind: Kind) -> None:
    """Totals are counters, backlogs up-down counters, levels gauges, and latencies, slippage and R histograms."""
    assert DEFAULT_CATALOG[name].kind is kind


def test_key_histogram_buckets_span_their_domain() -> None:
    """Slippage buckets are signed, R-multiples span -5 to +10, fill ratios 0 to 1, latencies milliseconds to 30 s."""
    slippage = DEFAULT_CATALOG["orders.slippage"].buckets or ()
    assert slippage[0] < 0 < slippage[-1]
    r_multiple = DEFAULT_CATALOG["trades.r_multiple"].buckets or ()
    assert r_multiple[0] <= -5
    assert r_multiple[-1] >= 10
    assert {-1.0, 0.0, 1.0} <= set(r_multiple)
    fill_ratio = DEFAULT_CATALOG["orders.fill_ratio"].buckets or ()
    assert fill_ratio[0] >= 0
    assert fill_ratio[-1] == 1
    latency = DEFAULT_CATALOG["exchange.request.duration"].buckets or ()
    assert latency[0] <= 0.001
    assert latency[-1] >= 30


@pytest.mark.parametrize(
    ("name", "key", "raw", "recorded"),
    [
        ("orders.rejected", "reason", "post_only_cross", "post_only_cross"),
        ("orders.rejected", "reason", "risk", "risk"),
        ("orders.rejected", "reason", "spec_violation", "invalid_order"),
        ("orders.rejected", "reason", "InsufficientFunds", "insufficient_funds"),
        ("orders.rejected", "reason", "max position size exceeded", "limit_exceeded"),
        ("exchange.errors", "error_type", "HTTP_429", "rate_limit"),
        ("exchange.errors", "error_type", "ReadTimeout", "timeout"),
        ("signals.rejected", "reason", "invalid_json", "invalid_payload"),
        ("signals.rejected", "reason", "low confidence", "low_confidence"),
        ("signals.rejected", "reason", "stale", "stale"),
        ("security.rate_limit.checks", "decision", "false", "deny"),
        ("security.allowlist.checks", "decision", "true", "allow"),
        ("security.rate_limited", "client", "192.168.1.77", "192.168.1.0/24"),
        ("security.validation.errors", "error_type", "price_deviation", "price_deviation"),
        ("trades.opened", "side", "-1", "sell"),
        ("trades.closed", "outcome", "breakeven", "breakeven"),
        ("account.exposure", "kind", "at_risk", "at_risk"),
        ("risk.circuit_breaker.transitions", "to_state", "half-open", "half_open"),
        ("strategy.cycles", "status", "success", "ok"),
        ("orders.submitted", "time_in_force", "RETURN", "gtc"),
        ("http.server.requests", "status_class", 404, "4xx"),
        ("storage.operations", "system", "postgres", "postgresql"),
    ],
)
def test_reference_label_values_normalise(name: str, key: str, raw: object, recorded: str) -> None:
    """Label values the references emit are folded by the catalog's policies into bounded values."""
    (attribute,) = (a for a in DEFAULT_CATALOG[name].attributes if a.key == key)
    assert attribute.policy.build()(raw) == recorded


def _markdown_rows(text: str) -> list[ReferenceRow]:
    rows: list[ReferenceRow] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not re.fullmatch(r"\d{3}", cells[0]):
            continue
        ref, metric, full_name, keys = (cell.replace("`", "") for cell in cells)
        attributes = tuple(key.strip() for key in keys.split(",") if key.strip() and key.strip() != "—")
        rows.append((ref, metric, full_name, attributes))
    return rows


def test_coverage_doc_matches_the_table() -> None:
    """docs/reference-coverage.md lists exactly the rows of REFERENCE_METRICS, with full instrument names."""
    documented = _markdown_rows(COVERAGE_DOC.read_text(encoding="utf-8"))
    expected = [
        (ref, metric, DEFAULT_CATALOG.full_name(DEFAULT_CATALOG[name]), keys)
        for ref, metric, name, keys in REFERENCE_METRICS
    ]
    assert documented == expected
