"""The order lifecycle tracker: orders followed across time, from decision to final state.

``tel.order_tracker`` is the :class:`OrderTracker` of a
:class:`~tradetel.Telemetry` (``tel.orders`` is the namespace of the order
instruments). Feed it explicit events or ccxt unified order and trade
structures, in any order and as often as they arrive; it records each
transition once. :func:`tradetel.instrument_ccxt` feeds it from a ccxt
exchange. See ``docs/orders.md``.

Example::

    tracker = tel.order_tracker
    tracker.open("c-1", exchange="binance", symbol="BTC/USDT", side="buy", amount=2, price=100, intent="entry")
    tracker.update({"id": "881", "clientOrderId": "c-1", "status": "open", "filled": 0.5, "average": 100.0})
    tracker.update({"id": "881", "status": "closed", "filled": 2.0, "average": 100.02})
"""

from ._lifecycle import FINAL_STATES, OrderTracker

__all__ = ["FINAL_STATES", "OrderTracker"]
