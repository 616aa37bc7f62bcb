"""The built-in instrument table behind :data:`tradetel.catalog.DEFAULT_CATALOG`.

One row per instrument, grouped by domain (the first segment of the name):
orders, trades, positions, account, risk, exchange, market_data, strategy,
signals, security, platform, http, storage, then tradetel's own health.
Names are relative to the namespace (``orders.filled`` is exported as
``trading.orders.filled``); tradetel's own rows are always ``tradetel.*``.

Units follow UCUM as OpenTelemetry uses it: ``s`` for durations, ``1`` for
ratios and shares (0.25, not 25 %), ``[bp]`` for basis points, ``By`` for
bytes, ``{quote}`` for amounts in the account's quote currency and braces
for counted things (``{order}``, ``{trade}``...). Attribute sets are small
and bounded: no order ids, user ids, prices or raw client addresses. The
shared attribute constants (``SYMBOL``, ``STRATEGY``...) can be reused by
user catalog extensions so that the same key keeps the same policy.
"""

from __future__ import annotations

from ._catalog import Attribute, Catalog, InstrumentSpec, Kind
from .labels import (
    ERROR_TYPE,
    NO_TRADE_REASON,
    REJECTION_REASON,
    ClientAddress,
    Free,
    OneOf,
    StatusClass,
    TopN,
)

__all__ = ["DEFAULT_CATALOG", "DEFAULT_INSTRUMENTS"]

# --- Bucket boundaries -------------------------------------------------------

API_LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
"""Request/response round trips: 1 ms to 30 s."""

ORDER_LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
"""Submit to ack/fill/cancel: 1 ms to 5 min (resting limit orders fill late)."""

CYCLE_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
"""A whole strategy cycle: 100 µs (tight event loops) to 5 min."""

STAGE_BUCKETS: tuple[float, ...] = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
"""One stage of a cycle: 10 µs (a signal computed in-process) to 60 s."""

HOLDING_TIME_BUCKETS: tuple[float, ...] = (
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0,
    7 * 86400.0, 30 * 86400.0,
)  # fmt: skip
"""Time a trade was held, entry to exit: 1 s (scalping) to 30 days."""

TIME_IN_BOOK_BUCKETS: tuple[float, ...] = (
    0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 7 * 86400.0,
)  # fmt: skip
"""Time an order rested at the venue, acknowledgement to final state: 1 ms to 7 days."""

MARKET_DATA_LAG_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
"""Event time to processing time: 1 ms to 60 s."""

STORAGE_LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
"""Redis and database operations: 100 µs to 5 s."""

SLIPPAGE_BUCKETS: tuple[float, ...] = (
    -100.0, -50.0, -25.0, -10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0,
)  # fmt: skip
"""Signed slippage in basis points; positive is worse than expected."""

SPREAD_BUCKETS: tuple[float, ...] = (
    0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
)  # fmt: skip
"""Bid-ask spread in basis points of the mid price."""

R_MULTIPLE_BUCKETS: tuple[float, ...] = (
    -5.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
"""Trade result in units of initial risk: -5 R to +10 R."""

RATIO_BUCKETS: tuple[float, ...] = (
    0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0,
)  # fmt: skip
"""Fill ratio, 0 to 1, dense near complete fills."""

SCORE_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0,
)  # fmt: skip
"""Scores and confidences, 0 to 1."""

NOTIONAL_BUCKETS: tuple[float, ...] = (
    10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1e3, 2.5e3, 5e3, 1e4, 2.5e4, 5e4,
    1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7,
)  # fmt: skip
"""Order notional in quote currency, log-spaced from 10 to 10 million."""

BODY_SIZE_BUCKETS: tuple[float, ...] = (
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
)  # fmt: skip
"""HTTP body sizes: 64 B to 4 MiB."""

# --- Shared attributes: trading ----------------------------------------------

EXCHANGE = Attribute("exchange", TopN(n=20), "Exchange or venue id, e.g. binance.")
SYMBOL = Attribute("symbol", TopN(n=200), "Instrument symbol as the venue spells it, e.g. BTC/USDT.")
SIDE = Attribute(
    "side",
    OneOf(
        ("buy", "sell"),
        aliases={"long": "buy", "short": "sell", "bid": "buy", "ask": "sell", "1": "buy", "-1": "sell"},
    ),
    "Order or trade direction: buy or sell (long/short, bid/ask and 1/-1 are accepted).",
)
ORDER_TYPE = Attribute(
    "order_type",
    OneOf(
        ("market", "limit", "stop", "stop_limit", "take_profit", "take_profit_limit", "trailing_stop"),
        aliases={
            "stop_market": "stop",
            "stop_loss": "stop",
            "stop-limit": "stop_limit",
            "stop_loss_limit": "stop_limit",
            "take_profit_market": "take_profit",
            "trailing_stop_market": "trailing_stop",
            "limit_maker": "limit",
        },
    ),
    "Order type, as in the ccxt unified order structure.",
)
TIME_IN_FORCE = Attribute(
    "time_in_force",
    OneOf(
        ("gtc", "ioc", "fok", "gtd", "day", "post_only"),
        aliases={
            "good_till_cancel": "gtc",
            "good_till_cancelled": "gtc",
            "immediate_or_cancel": "ioc",
            "fill_or_kill": "fok",
            "po": "post_only",
            "return": "gtc",
        },
    ),
    "Time in force or filling mode (IOC, FOK; MetaTrader's RETURN counts as gtc).",
)
STRATEGY = Attribute("strategy", TopN(n=50), "Strategy or bot name.")
ACCOUNT = Attribute("account", TopN(n=20), "Account or sub-account name chosen by the user.")
REJECTION = Attribute("reason", REJECTION_REASON, "Rejection reason folded to a canonical category.")
ORDER_STAGE = Attribute(
    "stage",
    OneOf(
        ("submit", "ack", "fill", "final", "cancel"),
        aliases={
            "decision": "submit",
            "acknowledged": "ack",
            "first_fill": "fill",
            "filled": "fill",
            "done": "final",
            "closed": "final",
            "cancelled": "cancel",
            "canceled": "cancel",
        },
    ),
    "Which latency: decision to submit, submit to ack, submit to first fill, submit to final state, "
    "or cancel request to cancel confirmation.",
)
LATENCY_CLOCK = Attribute(
    "clock",
    OneOf(("local", "exchange")),
    "Which clock measured it: local (monotonic, at receipt) or exchange (the venue's own timestamps).",
)
INTENT = Attribute(
    "intent",
    OneOf(
        ("entry", "exit", "reduce"),
        aliases={
            "open": "entry",
            "enter": "entry",
            "close": "exit",
            "take_profit": "exit",
            "stop_loss": "exit",
            "reduce_only": "reduce",
            "scale_out": "reduce",
            "partial_exit": "reduce",
        },
    ),
    "Why the order was sent: entry (opens or adds), exit (closes) or reduce (partly closes).",
)
SLIPPAGE_REFERENCE = Attribute(
    "reference",
    OneOf(("decision", "limit"), aliases={"arrival": "decision", "expected": "decision", "price": "limit"}),
    "Price the fill is compared with: decision (price when the order was decided) or limit (the order's limit).",
)
FINAL_STATE = Attribute(
    "state",
    OneOf(
        ("filled", "cancelled", "expired", "rejected"),
        aliases={"closed": "filled", "canceled": "cancelled"},
    ),
    "How the order ended: filled, cancelled, expired or rejected.",
)
EXIT_REASON = Attribute(
    "exit_reason",
    OneOf(
        ("stop", "target", "signal", "trailing", "liquidation", "manual", "end_of_data"),
        aliases={
            "stop_loss": "stop",
            "sl": "stop",
            "take_profit": "target",
            "tp": "target",
            "trailing_stop": "trailing",
            "liquidated": "liquidation",
            "margin_call": "liquidation",
            "user": "manual",
            "end_of_backtest": "end_of_data",
            "eod": "end_of_data",
        },
    ),
    "Why the trade was closed: stop, target, signal, trailing, liquidation, manual or end_of_data.",
)
EVICTION_REASON = Attribute(
    "reason",
    OneOf(("capacity", "age")),
    "Why the tracker let go of an open order: capacity (too many open) or age (no final state in time).",
)
OUTCOME = Attribute(
    "outcome",
    OneOf(
        ("win", "loss", "breakeven"),
        aliases={"won": "win", "profit": "win", "lost": "loss", "be": "breakeven", "scratch": "breakeven"},
    ),
    "Trade outcome: win, loss or breakeven.",
)
EXPOSURE_KIND = Attribute(
    "kind",
    OneOf(("at_risk", "pending", "gross", "net"), aliases={"at-risk": "at_risk", "atrisk": "at_risk"}),
    "Exposure measure: at_risk (open positions), pending (open orders), gross or net.",
)

# --- Shared attributes: risk and strategy ------------------------------------

GATE = Attribute("gate", TopN(n=30), "Risk gate name, e.g. spread, exposure, drawdown.")
GATE_DECISION = Attribute(
    "decision",
    OneOf(
        ("pass", "block"),
        aliases={
            "passed": "pass",
            "allow": "pass",
            "allowed": "pass",
            "approved": "pass",
            "blocked": "block",
            "deny": "block",
            "denied": "block",
            "rejected": "block",
        },
    ),
    "Gate decision: pass or block.",
)
NO_TRADE = Attribute("reason", NO_TRADE_REASON, "Why the cycle did not trade, folded to a canonical category.")
BREAKER = Attribute("breaker", TopN(n=20), "Circuit breaker name, e.g. api_health, or the exchange it guards.")
_BREAKER_STATES = OneOf(
    ("closed", "open", "half_open"),
    aliases={"half-open": "half_open", "halfopen": "half_open", "tripped": "open", "safe": "closed"},
)
FROM_STATE = Attribute("from_state", _BREAKER_STATES, "Breaker state before the transition.")
TO_STATE = Attribute("to_state", _BREAKER_STATES, "Breaker state after the transition.")
CYCLE_STATUS = Attribute(
    "status",
    OneOf(
        ("ok", "error", "skipped", "timeout"),
        aliases={
            "success": "ok",
            "completed": "ok",
            "failed": "error",
            "failure": "error",
            "exception": "error",
            "skip": "skipped",
            "no_trade": "skipped",
            "timed_out": "timeout",
        },
    ),
    "How the cycle ended: ok, error, skipped or timeout.",
)
LOOP_STAGE = Attribute("stage", TopN(n=20), "Stage of the strategy cycle, e.g. fetch, signals, risk, execution.")
PROPOSAL_STAGE = Attribute(
    "stage",
    OneOf(
        ("proposed", "approved", "executed"),
        aliases={"proposal": "proposed", "proposals": "proposed", "approve": "approved", "execute": "executed"},
    ),
    "How far the proposals got: proposed, approved by risk, or executed.",
)
MODEL = Attribute("model", TopN(n=20), "Model name, e.g. lstm.")
REGIME = Attribute("regime", TopN(n=16), "Market regime label, e.g. trending, ranging, volatile.")
SESSION = Attribute(
    "session",
    OneOf(
        ("asia", "london", "new_york", "overlap", "closed"),
        aliases={
            "tokyo": "asia",
            "sydney": "asia",
            "europe": "london",
            "ny": "new_york",
            "us": "new_york",
            "off": "closed",
            "weekend": "closed",
        },
    ),
    "Trading session: asia, london, new_york, overlap or closed.",
)

# --- Shared attributes: exchange, market data, signals -----------------------

ENDPOINT = Attribute("endpoint", TopN(n=50), "Exchange API endpoint or unified method, e.g. create_order.")
REQUEST_STATUS = Attribute(
    "status",
    OneOf(("ok", "error"), aliases={"success": "ok", "succeeded": "ok", "failure": "error", "failed": "error"}),
    "Whether the call succeeded: ok or error.",
)
API_ERROR = Attribute("error_type", ERROR_TYPE, "Error type folded to a canonical category, e.g. timeout, rate_limit.")
DATA_SOURCE = Attribute("source", TopN(n=20), "Market data source or feed, e.g. websocket, rest.")
SIGNAL_SOURCE = Attribute("source", TopN(n=20), "Signal or webhook source, e.g. tradingview.")
SIGNAL_TYPE = Attribute("signal_type", TopN(n=20), "Signal action or type, e.g. entry, exit, close.")
SIGNAL_REJECTION = Attribute(
    "reason",
    OneOf(
        (
            "invalid_payload",
            "invalid_signature",
            "stale",
            "low_confidence",
            "duplicate",
            "rate_limited",
            "unauthorized",
        ),
        aliases={
            "invalid_json": "invalid_payload",
            "validation": "invalid_payload",
            "validation_error": "invalid_payload",
            "signature": "invalid_signature",
            "bad_signature": "invalid_signature",
            "signature_failure": "invalid_signature",
            "expired": "stale",
            "too_old": "stale",
            "confidence": "low_confidence",
            "low confidence": "low_confidence",
            "below_threshold": "low_confidence",
            "replay": "duplicate",
            "rate_limit": "rate_limited",
            "throttled": "rate_limited",
            "forbidden": "unauthorized",
            "not_allowed": "unauthorized",
        },
    ),
    "Why the signal was refused: invalid_payload, invalid_signature, stale, low_confidence, duplicate, "
    "rate_limited or unauthorized.",
)
SIGNAL_STATUS = Attribute(
    "status",
    OneOf(
        ("ok", "error", "rejected"),
        aliases={"success": "ok", "failure": "error", "failed": "error", "refused": "rejected"},
    ),
    "How processing ended: ok, error or rejected.",
)

# --- Shared attributes: security, platform, HTTP, storage --------------------

CLIENT = Attribute("client", ClientAddress(), "Client network (IPv4 /24, IPv6 /48) or keyed hash; never a raw IP.")
ROUTE = Attribute("route", TopN(n=50), "Route template, e.g. /webhook/{source}; never a raw path with ids.")
ACCESS_DECISION = Attribute(
    "decision",
    OneOf(
        ("allow", "deny"),
        aliases={
            "true": "allow",
            "false": "deny",
            "allowed": "allow",
            "denied": "deny",
            "blocked": "deny",
            "rejected": "deny",
        },
    ),
    "Whether the request was let through: allow or deny (true/false are accepted).",
)
AUDIT_EVENT = Attribute("event", TopN(n=50), "Audited action, e.g. login, order_submit, config_change.")
AUDIT_RESULT = Attribute(
    "result",
    OneOf(("success", "failure"), aliases={"ok": "success", "true": "success", "error": "failure", "false": "failure"}),
    "Result of the audited action: success or failure.",
)
VALIDATION_ERROR = Attribute(
    "error_type",
    OneOf(
        (
            "symbol",
            "numeric",
            "nan",
            "inf",
            "price",
            "price_deviation",
            "quantity",
            "quantity_range",
            "missing",
            "format",
        ),
        aliases={"infinity": "inf", "infinite": "inf", "type": "numeric", "required": "missing"},
    ),
    "Validation rule that failed, e.g. nan, price_deviation, quantity_range.",
)
FIELD = Attribute("field", TopN(n=50), "Payload field that failed validation, e.g. price.")
NORMALIZATION = Attribute(
    "operation",
    OneOf(("symbol", "price", "quantity", "numeric", "side", "order_type", "timestamp")),
    "Which value was normalised, e.g. symbol, price, quantity.",
)
BOT_STATUS = Attribute(
    "status",
    OneOf(
        ("running", "paused", "stopped", "starting", "error"),
        aliases={"active": "running", "halted": "stopped", "failed": "error"},
    ),
    "Bot lifecycle status: running, paused, stopped, starting or error.",
)
WS_ENDPOINT = Attribute("endpoint", TopN(n=20), "WebSocket endpoint served to clients, e.g. general.")
HTTP_METHOD = Attribute(
    "method",
    OneOf(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")),
    "HTTP request method.",
)
STATUS_CLASS = Attribute("status_class", StatusClass(), "HTTP response status class, e.g. 2xx, 4xx.")
STORAGE_SYSTEM = Attribute(
    "system",
    OneOf(
        ("redis", "postgresql", "mysql", "sqlite", "mongodb", "clickhouse", "influxdb"),
        aliases={"postgres": "postgresql", "pg": "postgresql", "timescaledb": "postgresql", "mongo": "mongodb"},
    ),
    "Storage system, e.g. redis, postgresql.",
)
STORAGE_OPERATION = Attribute("operation", TopN(n=30), "Command or statement kind, e.g. GET, SET, SELECT, INSERT.")
COLLECTION = Attribute("collection", TopN(n=50), "Table, collection or key prefix; never a full key.")

# --- Shared attributes: tradetel itself --------------------------------------

INSTRUMENT = Attribute("instrument", Free(max_length=128), "Full name of the instrument concerned.")
DROP_REASON = Attribute("reason", Free(max_length=128), "Why the measurement was dropped, e.g. non_finite.")
ATTRIBUTE_KEY = Attribute("key", Free(max_length=128), "Attribute key concerned.")
EXPORTER = Attribute("exporter", Free(max_length=128), "Exporter or reader name, e.g. prometheus, otlp, dogstatsd.")
EXPORT_ERROR = Attribute("reason", Free(max_length=128), "Why the export failed, e.g. the exception type.")

_ORDER = (EXCHANGE, SYMBOL, SIDE, ORDER_TYPE, INTENT)

DEFAULT_INSTRUMENTS: tuple[InstrumentSpec, ...] = (
    # orders: lifecycle counts, queues, latency, execution quality
    InstrumentSpec(
        "orders.submitted",
        Kind.COUNTER,
        "{order}",
        "Orders sent to a venue and accepted for processing.",
        (*_ORDER, TIME_IN_FORCE),
    ),
    InstrumentSpec("orders.filled", Kind.COUNTER, "{order}", "Orders completely filled.", _ORDER),
    InstrumentSpec(
        "orders.partially_filled",
        Kind.COUNTER,
        "{order}",
        "Orders that received a partial fill, counted once per order.",
        _ORDER,
    ),
    InstrumentSpec(
        "orders.acknowledged",
        Kind.COUNTER,
        "{order}",
        "Orders the venue acknowledged (accepted into its book or executed), counted once per order.",
        _ORDER,
    ),
    InstrumentSpec("orders.cancelled", Kind.COUNTER, "{order}", "Orders cancelled before being fully filled.", _ORDER),
    InstrumentSpec(
        "orders.expired",
        Kind.COUNTER,
        "{order}",
        "Orders that ended unfilled or partly filled because their time in force ran out.",
        _ORDER,
    ),
    InstrumentSpec(
        "orders.rejected",
        Kind.COUNTER,
        "{order}",
        "Orders rejected by the venue or by pre-trade checks, by normalised reason.",
        (*_ORDER, REJECTION),
    ),
    InstrumentSpec(
        "orders.post_only_rejected",
        Kind.COUNTER,
        "{order}",
        "Post-only orders rejected because they would have crossed the spread.",
        (EXCHANGE, SYMBOL, SIDE),
    ),
    InstrumentSpec(
        "orders.pending",
        Kind.UP_DOWN_COUNTER,
        "{order}",
        "Orders currently open at the venue (add 1 on submit, subtract 1 on a final state).",
        (EXCHANGE, SYMBOL),
    ),
    InstrumentSpec(
        "orders.stops.active",
        Kind.UP_DOWN_COUNTER,
        "{order}",
        "Stop orders currently armed, at the venue or held locally.",
        (EXCHANGE, SYMBOL),
    ),
    InstrumentSpec(
        "orders.stops.triggered", Kind.COUNTER, "{order}", "Stop orders that triggered.", (EXCHANGE, SYMBOL)
    ),
    InstrumentSpec(
        "orders.latency",
        Kind.HISTOGRAM,
        "s",
        "Order stage latency: decision to submit, submit to ack, first fill or final state, cancel request "
        "to confirmation.",
        (EXCHANGE, SYMBOL, ORDER_TYPE, ORDER_STAGE, LATENCY_CLOCK),
        buckets=ORDER_LATENCY_BUCKETS,
    ),
    InstrumentSpec(
        "orders.slippage",
        Kind.HISTOGRAM,
        "[bp]",
        "Signed difference between fill price and expected price in basis points, positive when worse.",
        (EXCHANGE, SYMBOL, SIDE, INTENT, SLIPPAGE_REFERENCE),
        buckets=SLIPPAGE_BUCKETS,
    ),
    InstrumentSpec(
        "orders.notional",
        Kind.HISTOGRAM,
        "{quote}",
        "Order size in quote currency (quantity times price).",
        (EXCHANGE, SYMBOL, SIDE),
        buckets=NOTIONAL_BUCKETS,
    ),
    InstrumentSpec(
        "orders.fill_ratio",
        Kind.HISTOGRAM,
        "1",
        "Filled share of each order's quantity when it reaches a final state, from 0 to 1.",
        (EXCHANGE, SYMBOL, ORDER_TYPE, FINAL_STATE),
        buckets=RATIO_BUCKETS,
    ),
    InstrumentSpec(
        "orders.fees",
        Kind.UP_DOWN_COUNTER,
        "{quote}",
        "Trading fees paid on fills in quote currency; negative for maker rebates.",
        (EXCHANGE, SYMBOL, SIDE, INTENT),
    ),
    InstrumentSpec(
        "orders.time_in_book",
        Kind.HISTOGRAM,
        "s",
        "Time each order rested at the venue, from acknowledgement to its final state.",
        (EXCHANGE, SYMBOL, ORDER_TYPE, FINAL_STATE, LATENCY_CLOCK),
        buckets=TIME_IN_BOOK_BUCKETS,
    ),
    # trades: round trips from entry to exit
    InstrumentSpec("trades.opened", Kind.COUNTER, "{trade}", "Trades (positions) opened.", (SYMBOL, STRATEGY, SIDE)),
    InstrumentSpec(
        "trades.closed",
        Kind.COUNTER,
        "{trade}",
        "Trades closed, by outcome win, loss or breakeven, and exit reason.",
        (SYMBOL, STRATEGY, OUTCOME, SIDE, EXIT_REASON),
    ),
    InstrumentSpec(
        "trades.r_multiple",
        Kind.HISTOGRAM,
        "1",
        "Result of each closed trade in multiples of its initial risk (R).",
        (SYMBOL, STRATEGY, SIDE),
        buckets=R_MULTIPLE_BUCKETS,
    ),
    InstrumentSpec(
        "trades.realized_pnl",
        Kind.UP_DOWN_COUNTER,
        "{quote}",
        "Realised profit and loss of closed trades in quote currency, net of fees; may be negative.",
        (SYMBOL, STRATEGY, SIDE),
    ),
    InstrumentSpec(
        "trades.holding_time",
        Kind.HISTOGRAM,
        "s",
        "Time each closed trade was held, from entry to exit.",
        (SYMBOL, STRATEGY, SIDE, EXIT_REASON),
        buckets=HOLDING_TIME_BUCKETS,
    ),
    # positions: what is held now
    InstrumentSpec("positions.open", Kind.GAUGE, "{position}", "Open positions, excluding dust.", (SYMBOL,)),
    # account: balances and exposure
    InstrumentSpec(
        "account.equity",
        Kind.GAUGE,
        "{quote}",
        "Account equity or total portfolio value (net asset value) in quote currency.",
        (ACCOUNT,),
    ),
    InstrumentSpec(
        "account.balance",
        Kind.GAUGE,
        "{quote}",
        "Account cash balance in quote currency, excluding unrealised profit and loss.",
        (ACCOUNT,),
    ),
    InstrumentSpec(
        "account.drawdown",
        Kind.GAUGE,
        "1",
        "Current drawdown from the equity peak as a fraction (0.05 is 5 %).",
        (ACCOUNT,),
    ),
    InstrumentSpec(
        "account.exposure",
        Kind.GAUGE,
        "1",
        "Exposure as a share of net asset value (0.185 is 18.5 %), at risk, pending, gross or net.",
        (ACCOUNT, EXPOSURE_KIND),
    ),
    # risk: gates, no-trade decisions, circuit breakers, kill switch
    InstrumentSpec(
        "risk.gate.decisions",
        Kind.COUNTER,
        "{decision}",
        "Risk gate evaluations, by gate and decision pass or block.",
        (GATE, GATE_DECISION),
    ),
    InstrumentSpec(
        "risk.no_trade",
        Kind.COUNTER,
        "{decision}",
        "Decisions not to trade (blocked decisions), by normalised reason.",
        (NO_TRADE, STRATEGY),
    ),
    InstrumentSpec(
        "risk.circuit_breaker.state",
        Kind.GAUGE,
        "1",
        "Circuit breaker state: 1 open (tripped), 0.5 half-open, 0 closed (safe).",
        (BREAKER,),
    ),
    InstrumentSpec("risk.circuit_breaker.trips", Kind.COUNTER, "{trip}", "Circuit breaker trips.", (BREAKER,)),
    InstrumentSpec(
        "risk.circuit_breaker.transitions",
        Kind.COUNTER,
        "{transition}",
        "Circuit breaker state changes, by previous and new state.",
        (BREAKER, FROM_STATE, TO_STATE),
    ),
    InstrumentSpec(
        "risk.circuit_breaker.rejections",
        Kind.COUNTER,
        "{call}",
        "Calls refused because their circuit breaker was open.",
        (BREAKER,),
    ),
    InstrumentSpec(
        "risk.kill_switch.state", Kind.GAUGE, "1", "Kill switch state: 1 engaged (trading halted), 0 released."
    ),
    # exchange: API health
    InstrumentSpec(
        "exchange.requests",
        Kind.COUNTER,
        "{request}",
        "Exchange API calls, by endpoint and status.",
        (EXCHANGE, ENDPOINT, REQUEST_STATUS),
    ),
    InstrumentSpec(
        "exchange.request.duration",
        Kind.HISTOGRAM,
        "s",
        "Exchange API call duration.",
        (EXCHANGE, ENDPOINT),
        buckets=API_LATENCY_BUCKETS,
    ),
    InstrumentSpec(
        "exchange.errors",
        Kind.COUNTER,
        "{error}",
        "Exchange API errors, by normalised error type.",
        (EXCHANGE, ENDPOINT, API_ERROR),
    ),
    InstrumentSpec(
        "exchange.error_streak",
        Kind.GAUGE,
        "{error}",
        "Consecutive exchange API errors since the last success (0 after a success).",
        (EXCHANGE,),
    ),
    InstrumentSpec(
        "exchange.connections", Kind.UP_DOWN_COUNTER, "{connection}", "Open exchange client sessions.", (EXCHANGE,)
    ),
    InstrumentSpec(
        "exchange.rate_limit.utilization",
        Kind.GAUGE,
        "1",
        "Share of the exchange rate-limit budget in use, from 0 to 1.",
        (EXCHANGE,),
    ),
    InstrumentSpec(
        "exchange.rate_limit.hits",
        Kind.COUNTER,
        "{request}",
        "Requests refused or throttled because a rate limit was hit.",
        (EXCHANGE,),
    ),
    # market_data: feeds, freshness, quotes
    InstrumentSpec(
        "market_data.updates",
        Kind.COUNTER,
        "{update}",
        "Market data updates processed, by symbol and source.",
        (SYMBOL, DATA_SOURCE),
    ),
    InstrumentSpec(
        "market_data.lag",
        Kind.HISTOGRAM,
        "s",
        "Delay between a market data event's timestamp and its processing.",
        (DATA_SOURCE,),
        buckets=MARKET_DATA_LAG_BUCKETS,
    ),
    InstrumentSpec(
        "market_data.websocket.connections",
        Kind.UP_DOWN_COUNTER,
        "{connection}",
        "Open market data websocket connections.",
        (DATA_SOURCE,),
    ),
    InstrumentSpec(
        "market_data.spread",
        Kind.HISTOGRAM,
        "[bp]",
        "Bid-ask spread in basis points of the mid price.",
        (SYMBOL,),
        buckets=SPREAD_BUCKETS,
    ),
    InstrumentSpec(
        "market_data.volatility",
        Kind.GAUGE,
        "1",
        "Current volatility estimate as a fraction of price (for example ATR divided by price).",
        (SYMBOL,),
    ),
    # strategy: the decision loop
    InstrumentSpec(
        "strategy.cycles",
        Kind.COUNTER,
        "{cycle}",
        "Strategy cycles run, by how they ended.",
        (STRATEGY, CYCLE_STATUS, SYMBOL),
    ),
    InstrumentSpec(
        "strategy.cycle.duration",
        Kind.HISTOGRAM,
        "s",
        "Duration of a whole strategy cycle.",
        (STRATEGY, SYMBOL),
        buckets=CYCLE_BUCKETS,
    ),
    InstrumentSpec(
        "strategy.stage.duration",
        Kind.HISTOGRAM,
        "s",
        "Duration of one stage of a strategy cycle.",
        (STRATEGY, LOOP_STAGE),
        buckets=STAGE_BUCKETS,
    ),
    InstrumentSpec(
        "strategy.proposals",
        Kind.COUNTER,
        "{proposal}",
        "Trade proposals, by how far they got: proposed, approved or executed.",
        (STRATEGY, PROPOSAL_STAGE),
    ),
    InstrumentSpec(
        "strategy.decision.score",
        Kind.HISTOGRAM,
        "1",
        "Score of each trading decision, from 0 to 1.",
        (STRATEGY,),
        buckets=SCORE_BUCKETS,
    ),
    InstrumentSpec(
        "strategy.confidence",
        Kind.GAUGE,
        "1",
        "Current dynamic confidence level of the strategy, from 0 to 1.",
        (STRATEGY,),
    ),
    InstrumentSpec(
        "strategy.model.accuracy",
        Kind.GAUGE,
        "1",
        "Recent accuracy of a predictive model, from 0 to 1.",
        (STRATEGY, MODEL),
    ),
    InstrumentSpec(
        "strategy.regime",
        Kind.GAUGE,
        "1",
        "Market regime seen by the strategy: 1 for the current regime, 0 for the others.",
        (STRATEGY, REGIME),
    ),
    InstrumentSpec(
        "strategy.session",
        Kind.GAUGE,
        "1",
        "Trading session seen by the strategy: 1 for the current session, 0 for the others.",
        (STRATEGY, SESSION),
    ),
    InstrumentSpec(
        "strategy.pnl",
        Kind.GAUGE,
        "{quote}",
        "Current profit and loss of a strategy or bot in quote currency, realised plus unrealised.",
        (STRATEGY, SYMBOL),
    ),
    # signals: webhooks and external signals
    InstrumentSpec(
        "signals.received",
        Kind.COUNTER,
        "{signal}",
        "Signals and webhook requests received.",
        (SIGNAL_SOURCE, SIGNAL_TYPE, SYMBOL, SIDE),
    ),
    InstrumentSpec(
        "signals.rejected",
        Kind.COUNTER,
        "{signal}",
        "Signals refused, by reason.",
        (SIGNAL_SOURCE, SIGNAL_REJECTION),
    ),
    InstrumentSpec(
        "signals.processing.duration",
        Kind.HISTOGRAM,
        "s",
        "Time to process one signal, from receipt to response.",
        (SIGNAL_SOURCE, SIGNAL_STATUS),
        buckets=API_LATENCY_BUCKETS,
    ),
    InstrumentSpec(
        "signals.in_flight", Kind.UP_DOWN_COUNTER, "{signal}", "Signals being processed now.", (SIGNAL_SOURCE,)
    ),
    # security: rate limits, allow-lists, audit, validation
    InstrumentSpec(
        "security.rate_limit.checks",
        Kind.COUNTER,
        "{request}",
        "Rate-limit checks, by client network and decision.",
        (CLIENT, ROUTE, ACCESS_DECISION),
    ),
    InstrumentSpec(
        "security.rate_limited",
        Kind.COUNTER,
        "{request}",
        "Requests refused by the rate limiter, by client network.",
        (CLIENT, ROUTE),
    ),
    InstrumentSpec(
        "security.allowlist.checks",
        Kind.COUNTER,
        "{request}",
        "IP allow-list checks, by client network and decision.",
        (CLIENT, ACCESS_DECISION),
    ),
    InstrumentSpec(
        "security.allowlist.rejected",
        Kind.COUNTER,
        "{request}",
        "Requests refused by the IP allow-list, by client network.",
        (CLIENT,),
    ),
    InstrumentSpec(
        "security.audit.events",
        Kind.COUNTER,
        "{event}",
        "Audit log entries written, by action and result.",
        (AUDIT_EVENT, AUDIT_RESULT, CLIENT),
    ),
    InstrumentSpec(
        "security.validation.errors",
        Kind.COUNTER,
        "{error}",
        "Input validation failures, by rule and field.",
        (VALIDATION_ERROR, FIELD),
    ),
    InstrumentSpec(
        "security.validation.operations",
        Kind.COUNTER,
        "{operation}",
        "Input values normalised, by kind of value.",
        (NORMALIZATION,),
    ),
    # platform: multi-bot hosting
    InstrumentSpec("platform.bots", Kind.GAUGE, "{bot}", "Bots hosted by the platform, by status.", (BOT_STATUS,)),
    InstrumentSpec(
        "platform.websocket.clients",
        Kind.UP_DOWN_COUNTER,
        "{connection}",
        "WebSocket clients connected to the platform.",
        (WS_ENDPOINT,),
    ),
    # http: the bot's own HTTP server (API, webhooks)
    InstrumentSpec(
        "http.server.requests",
        Kind.COUNTER,
        "{request}",
        "HTTP requests served, by method, route and status class.",
        (HTTP_METHOD, ROUTE, STATUS_CLASS),
    ),
    InstrumentSpec(
        "http.server.request.duration",
        Kind.HISTOGRAM,
        "s",
        "HTTP request handling duration.",
        (HTTP_METHOD, ROUTE, STATUS_CLASS),
        buckets=API_LATENCY_BUCKETS,
    ),
    InstrumentSpec(
        "http.server.request.body.size",
        Kind.HISTOGRAM,
        "By",
        "HTTP request body size.",
        (HTTP_METHOD, ROUTE),
        buckets=BODY_SIZE_BUCKETS,
    ),
    InstrumentSpec(
        "http.server.response.body.size",
        Kind.HISTOGRAM,
        "By",
        "HTTP response body size.",
        (HTTP_METHOD, ROUTE),
        buckets=BODY_SIZE_BUCKETS,
    ),
    # storage: Redis and databases
    InstrumentSpec(
        "storage.operations",
        Kind.COUNTER,
        "{operation}",
        "Redis and database operations, by system, operation, collection and status.",
        (STORAGE_SYSTEM, STORAGE_OPERATION, COLLECTION, REQUEST_STATUS),
    ),
    InstrumentSpec(
        "storage.operation.duration",
        Kind.HISTOGRAM,
        "s",
        "Redis and database operation duration.",
        (STORAGE_SYSTEM, STORAGE_OPERATION),
        buckets=STORAGE_LATENCY_BUCKETS,
    ),
    InstrumentSpec(
        "storage.errors",
        Kind.COUNTER,
        "{error}",
        "Redis and database errors, connection errors included, by normalised error type.",
        (STORAGE_SYSTEM, API_ERROR),
    ),
    # tradetel: the SDK's own health, always named tradetel.*
    InstrumentSpec(
        "measurements.dropped",
        Kind.COUNTER,
        "{measurement}",
        "Measurements tradetel dropped instead of recording, by reason.",
        (INSTRUMENT, DROP_REASON),
        self_metric=True,
    ),
    InstrumentSpec(
        "attributes.dropped",
        Kind.COUNTER,
        "{attribute}",
        "Attributes removed from measurements because the instrument does not accept their key.",
        (INSTRUMENT, ATTRIBUTE_KEY),
        self_metric=True,
    ),
    InstrumentSpec(
        "attributes.folded",
        Kind.COUNTER,
        "{attribute}",
        "Attribute values replaced by a label policy (fallback, category or truncation).",
        (INSTRUMENT, ATTRIBUTE_KEY),
        self_metric=True,
    ),
    InstrumentSpec(
        "cardinality.overflow",
        Kind.COUNTER,
        "{measurement}",
        "Measurements recorded into an instrument's overflow series because its series limit was reached.",
        (INSTRUMENT,),
        self_metric=True,
    ),
    InstrumentSpec(
        "orders.evicted",
        Kind.COUNTER,
        "{order}",
        "Open orders the order tracker let go of without a final state, by reason capacity or age.",
        (EVICTION_REASON,),
        self_metric=True,
    ),
    InstrumentSpec(
        "export.failures",
        Kind.COUNTER,
        "{export}",
        "Failed metric exports, by exporter and reason.",
        (EXPORTER, EXPORT_ERROR),
        self_metric=True,
    ),
    InstrumentSpec(
        "export.duration",
        Kind.HISTOGRAM,
        "s",
        "Duration of one metric export, by exporter.",
        (EXPORTER,),
        buckets=API_LATENCY_BUCKETS,
        self_metric=True,
    ),
)
"""The built-in catalog, ordered by domain."""

DEFAULT_CATALOG: Catalog = Catalog(DEFAULT_INSTRUMENTS)
"""The built-in catalog covering orders, trades, risk, exchange API, market data,
strategy loop, signals, security and tradetel's own health."""
