"""Market structures for real ccxt exchange classes used offline (their network method replaced)."""

from typing import Any

BINANCE_MARKET: dict[str, Any] = {
    "id": "BTCUSDT",
    "symbol": "BTC/USDT",
    "base": "BTC",
    "quote": "USDT",
    "baseId": "BTC",
    "quoteId": "USDT",
    "type": "spot",
    "spot": True,
    "margin": False,
    "swap": False,
    "future": False,
    "option": False,
    "contract": False,
    "linear": None,
    "inverse": None,
    "active": True,
    "precision": {"amount": 0.00001, "price": 0.01},
    "limits": {"amount": {"min": 0.00001, "max": 9000}, "price": {"min": 0.01, "max": 1e6}, "cost": {"min": 5}},
    "info": {"orderTypes": ["LIMIT", "MARKET"]},
}
