"""A simulated trading bot, instrumented with tradetel, for ``tradetel demo``."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import TextIO

from .telemetry import Telemetry

SYMBOLS = {"BTC-USD": 65_000.0, "ETH-USD": 3_200.0, "SOL-USD": 150.0}
EXCHANGE = "binance"
REJECTION_TEXTS = (
    "Insufficient balance for requested order",
    "Max position size exceeded",
    "Order spacing cooldown active",
    "Exposure cap reached for symbol",
    "Notional below exchange minimum",
    "Post-only order would cross the book",
)
API_ERRORS = ("Request timeout after 10s", "HTTP 429 Too Many Requests", "502 Bad Gateway", "Connection reset by peer")
NO_TRADE_TEXTS = ("no signal", "confidence below threshold", "spread too wide", "cooldown active")


@dataclass
class _State:
    prices: dict[str, float] = field(default_factory=lambda: dict(SYMBOLS))
    equity: float = 100_000.0
    peak: float = 100_000.0
    open_positions: dict[str, int] = field(default_factory=dict)
    error_streak: int = 0
    breaker_open_until: float = 0.0
    orders: int = 0
    fills: int = 0
    rejects: int = 0
    trades: int = 0
    trips: int = 0
    ticks: int = 0
    cycles: int = 0
    last_record: float = 0.0  # wall-clock time of the last tick's measurements


class DemoBot:
    """Random-walk markets, a strategy loop, an order router and a risk engine, all instrumented."""

    def __init__(self, telemetry: Telemetry, seed: int | None = None, error_rate: float = 0.08) -> None:
        self.tel = telemetry
        self.rng = random.Random(seed)
        self.error_rate = error_rate
        self.state = _State()
        self.book = _RestingOrders(telemetry, self.rng)

    def tick(self, now: float) -> None:
        """One loop iteration: market data, then (sometimes) a strategy cycle."""
        tel, rng, state = self.tel, self.rng, self.state
        state.ticks += 1
        for symbol in state.prices:
            state.prices[symbol] *= math.exp(rng.gauss(0, 0.0008))
            tel.market_data.updates.add(1, symbol=symbol, source="binance-ws")
            tel.market_data.lag.record(rng.lognormvariate(math.log(0.004), 0.6), source="binance-ws")
            tel.market_data.spread.record(abs(rng.gauss(1.5, 0.8)), symbol=symbol)
        self.book.tick(now, state.prices)
        if rng.random() < 0.5:
            self.cycle(now)

    def cycle(self, now: float) -> None:
        tel, rng, state = self.tel, self.rng, self.state
        strategy = rng.choice(("breakout", "mean_reversion"))
        state.cycles += 1
        started = time.perf_counter()
        tel.strategy.stage.duration.record(rng.uniform(0.0005, 0.004), strategy=strategy, stage="signal")
        score = rng.random()
        tel.strategy.decision.score.record(score, strategy=strategy)
        breaker_open = now < state.breaker_open_until
        tel.risk.circuit_breaker.state.set(1 if breaker_open else 0, breaker="api_health")
        if breaker_open:
            tel.risk.gate.decisions.add(1, gate="circuit_breaker", decision="block")
            tel.risk.no_trade.add(1, reason="circuit breaker open", strategy=strategy)
            tel.strategy.cycles.add(1, strategy=strategy, status="skipped")
        elif score < 0.45:
            tel.risk.no_trade.add(1, reason=rng.choice(NO_TRADE_TEXTS), strategy=strategy)
            tel.strategy.cycles.add(1, strategy=strategy, status="ok")
        else:
            tel.risk.gate.decisions.add(1, gate="exposure", decision="pass")
            self.place_order(rng.choice(list(state.prices)), strategy, now)
            tel.strategy.cycles.add(1, strategy=strategy, status="ok")
        tel.strategy.cycle.duration.record(time.perf_counter() - started + rng.uniform(0.002, 0.02), strategy=strategy)
        self.mark_account()

    def place_order(self, symbol: str, strategy: str, now: float) -> None:
        tel, rng, state = self.tel, self.rng, self.state
        side = rng.choice(("buy", "sell"))
        order_type = rng.choice(("market", "market", "limit"))
        state.orders += 1
        if order_type == "limit":  # resting limit orders are followed by the order tracker
            self.book.place(symbol, side, strategy, state.prices[symbol], now)
            return
        labels = {"exchange": EXCHANGE, "symbol": symbol, "side": side, "order_type": order_type}
        tel.orders.submitted.add(1, **labels)
        tel.orders.pending.add(1, exchange=EXCHANGE, symbol=symbol)
        request_time = rng.lognormvariate(math.log(0.045), 0.5)
        tel.exchange.request.duration.record(request_time, exchange=EXCHANGE, endpoint="create_order")
        try:
            if rng.random() < self.error_rate:
                error = rng.choice(API_ERRORS)
                tel.exchange.requests.add(1, exchange=EXCHANGE, endpoint="create_order", status="error")
                tel.exchange.errors.add(1, exchange=EXCHANGE, endpoint="create_order", error_type=error)
                state.error_streak += 1
                tel.exchange.error_streak.set(state.error_streak, exchange=EXCHANGE)
                if state.error_streak >= 3:
                    state.breaker_open_until = now + 5.0
                    state.error_streak = 0
                    state.trips += 1
                    tel.risk.circuit_breaker.trips.add(1, breaker="api_health")
                    tel.risk.circuit_breaker.state.set(1, breaker="api_health")
                state.rejects += 1
                tel.orders.rejected.add(1, **labels, reason="exchange error: " + error)
                return
            state.error_streak = 0
            tel.exchange.error_streak.set(0, exchange=EXCHANGE)
            tel.exchange.requests.add(1, exchange=EXCHANGE, endpoint="create_order", status="ok")
            tel.exchange.rate_limit.utilization.set(rng.uniform(0.1, 0.7), exchange=EXCHANGE)
            tel.orders.latency.record(
                request_time, exchange=EXCHANGE, symbol=symbol, order_type=order_type, stage="ack"
            )
            if rng.random() < 0.1:
                state.rejects += 1
                tel.orders.rejected.add(1, **labels, reason=rng.choice(REJECTION_TEXTS))
                return
            price = state.prices[symbol]
            quantity = rng.uniform(0.2, 2.0) * 1000.0 / price
            fill_ratio = 1.0 if order_type == "market" or rng.random() < 0.7 else rng.uniform(0.2, 0.9)
            slippage_bp = rng.gauss(1.0 if side == "buy" else -1.0, 3.0)
            tel.orders.latency.record(
                request_time + rng.uniform(0.001, 0.05),
                exchange=EXCHANGE,
                symbol=symbol,
                order_type=order_type,
                stage="fill",
            )
            tel.orders.slippage.record(slippage_bp, exchange=EXCHANGE, symbol=symbol, side=side)
            tel.orders.notional.record(quantity * price * fill_ratio, exchange=EXCHANGE, symbol=symbol, side=side)
            tel.orders.fill_ratio.record(fill_ratio, exchange=EXCHANGE, symbol=symbol)
            if fill_ratio < 1.0:
                tel.orders.partially_filled.add(1, **labels)
            else:
                tel.orders.filled.add(1, **labels)
            state.fills += 1
            self.trade(symbol, strategy, side)
        finally:
            tel.orders.pending.add(-1, exchange=EXCHANGE, symbol=symbol)

    def trade(self, symbol: str, strategy: str, side: str) -> None:
        tel, rng, state = self.tel, self.rng, self.state
        if symbol not in state.open_positions:
            state.open_positions[symbol] = 1
            tel.trades.opened.add(1, symbol=symbol, strategy=strategy, side=side)
            tel.orders.stops.active.add(1, exchange=EXCHANGE, symbol=symbol)
        else:
            del state.open_positions[symbol]
            r_multiple = max(-3.0, rng.gauss(0.3, 1.4))
            outcome = "win" if r_multiple > 0.05 else "loss" if r_multiple < -0.05 else "breakeven"
            if r_multiple <= -1.0:
                tel.orders.stops.triggered.add(1, exchange=EXCHANGE, symbol=symbol)
            tel.orders.stops.active.add(-1, exchange=EXCHANGE, symbol=symbol)
            pnl = r_multiple * 250.0
            state.equity += pnl
            state.trades += 1
            tel.trades.closed.add(1, symbol=symbol, strategy=strategy, outcome=outcome)
            tel.trades.r_multiple.record(r_multiple, symbol=symbol, strategy=strategy)
            tel.trades.realized_pnl.add(pnl, symbol=symbol, strategy=strategy)
        for sym in SYMBOLS:
            tel.positions.open.set(state.open_positions.get(sym, 0), symbol=sym)

    def mark_account(self) -> None:
        tel, state = self.tel, self.state
        state.peak = max(state.peak, state.equity)
        tel.account.equity.set(state.equity, account="demo")
        tel.account.balance.set(state.equity - 250.0 * len(state.open_positions), account="demo")
        tel.account.drawdown.set((state.peak - state.equity) / state.peak, account="demo")
        tel.account.exposure.set(0.01 * len(state.open_positions), account="demo", kind="at_risk")

    def counts(self) -> dict[str, float]:
        """What the bot recorded, counted apart from the telemetry, for checking a backend's totals.

        ``ticks`` is one ``market_data.updates`` per symbol each; ``cycles`` the sum of ``strategy.cycles``;
        ``rejects``, ``trades`` and ``trips`` the sums of ``orders.rejected``, ``trades.closed`` and
        ``risk.circuit_breaker.trips``; ``last_record`` the wall-clock time of the last tick.
        """
        state = self.state
        return {
            "ticks": state.ticks,
            "symbols": len(state.prices),
            "cycles": state.cycles,
            "orders": state.orders,
            "fills": state.fills,
            "rejects": state.rejects,
            "trades": state.trades,
            "trips": state.trips,
            "last_record": state.last_record,
        }

    def summary(self, elapsed: float) -> str:
        state = self.state
        breaker = "OPEN" if time.monotonic() < state.breaker_open_until else "closed"
        return (
            f"[{elapsed:6.1f}s] orders={state.orders} fills={state.fills} rejects={state.rejects} "
            f"trades={state.trades} equity={state.equity:,.0f} breaker={breaker} trips={state.trips}"
        )


class _RestingOrders:
    """Limit orders resting on a simulated book, reported to the order tracker as ccxt order updates.

    Each is acknowledged, then on later ticks fills in parts, and ends filled, cancelled (a cancel
    request first) or expired (its good-till time passes), with some updates delivered twice.
    """

    def __init__(self, telemetry: Telemetry, rng: random.Random) -> None:
        self.tracker = telemetry.order_tracker
        self.rng = rng
        self.count = 0
        self.open: dict[str, tuple[dict[str, object], float, float]] = {}  # order, expiry, cancel time

    def place(self, symbol: str, side: str, strategy: str, price: float, now: float) -> None:
        rng = self.rng
        self.count += 1
        client_id = f"demo-{self.count}"
        limit = round(price * (0.9995 if side == "buy" else 1.0005), 2)
        amount = round(rng.uniform(0.2, 2.0) * 1000.0 / price, 6)
        self.tracker.open(client_id, exchange=EXCHANGE, symbol=symbol, side=side, amount=amount, price=limit,
                          decision_price=price, strategy=strategy, intent=rng.choice(("entry", "entry", "exit")),
                          time_in_force="GTD")  # fmt: skip
        order: dict[str, object] = {"id": f"X{self.count}", "clientOrderId": client_id, "symbol": symbol,
                                    "side": side, "type": "limit", "amount": amount, "price": limit,
                                    "status": "open", "filled": 0.0, "cost": 0.0, "timestamp": _venue_ms()}  # fmt: skip
        self.tracker.update(order, exchange=EXCHANGE)
        cancel_at = now + rng.uniform(1.0, 6.0) if rng.random() < 0.1 else math.inf
        self.open[client_id] = (order, now + rng.uniform(3.0, 10.0), cancel_at)

    def tick(self, now: float, prices: dict[str, float]) -> None:
        rng = self.rng
        for client_id, (order, expiry, cancel_at) in list(self.open.items()):
            amount, filled, cost = float(order["amount"]), float(order["filled"]), float(order["cost"])  # type: ignore[arg-type]
            update = dict(order)
            if now >= cancel_at or now >= expiry:
                if now >= cancel_at:
                    self.tracker.cancel_requested(client_id)
                update["status"] = "canceled" if now >= cancel_at else "expired"
                del self.open[client_id]
            elif rng.random() < 0.05:
                quantity = min(amount - filled, round(amount * rng.uniform(0.2, 0.7), 6))
                price = float(order["price"]) * (1 + rng.gauss(0, 0.0001))  # type: ignore[arg-type]
                filled, cost = filled + quantity, cost + quantity * price
                fee = {"cost": cost * 0.001}  # in quote currency
                update.update(filled=filled, cost=cost, average=cost / filled, lastTradeTimestamp=_venue_ms(), fee=fee)
                if filled >= amount:
                    update["status"] = "closed"
                    del self.open[client_id]
                else:
                    self.open[client_id] = (update, expiry, cancel_at)
            else:
                continue
            update["lastUpdateTimestamp"] = _venue_ms()
            self.tracker.update(update, exchange=EXCHANGE)
            if rng.random() < 0.2:
                self.tracker.update(update, exchange=EXCHANGE)  # websocket and polling both report it


def _venue_ms() -> int:
    """The simulated venue's clock: wall time in milliseconds, as exchanges stamp their updates."""
    return int(time.time() * 1000)


def run(
    telemetry: Telemetry,
    duration: float | None,
    out: TextIO,
    *,
    seed: int | None = None,
    ticks: int | None = None,
    tick: float = 0.05,
    summary_every: float = 5.0,
    quiet: bool = False,
) -> DemoBot:
    """Run the simulated bot for ``duration`` seconds or ``ticks`` loop iterations (forever when neither)."""
    bot = DemoBot(telemetry, seed=seed)
    start = last = time.monotonic()
    while True:
        now = time.monotonic()
        if duration is not None and now - start >= duration:
            break
        if ticks is not None and bot.state.ticks >= ticks:
            break
        bot.tick(now)
        bot.state.last_record = time.time()
        if not quiet and now - last >= summary_every:
            last = now
            print(bot.summary(now - start), file=out, flush=True)
        time.sleep(tick)
    if not quiet:
        print(bot.summary(time.monotonic() - start), file=out, flush=True)
    return bot
