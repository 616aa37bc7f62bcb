"""The handle types ``tel.<domain>.<instrument>`` returns, for annotations and ``isinstance``.

Handles are built by :func:`tradetel.configure`, one per catalog entry; they
are not constructed directly. Each kind records through one method: a
:class:`Counter` or an :class:`UpDownCounter` through ``add``, a
:class:`Gauge` through ``set``, a :class:`Histogram` through ``record``; the
other two methods drop the call and count it as ``wrong_method``.
``bind(**attributes)`` returns a :class:`BoundSeries`.

Example::

    from tradetel.instruments import Counter

    def count_fill(fills: Counter, symbol: str) -> None:
        fills.add(1, symbol=symbol)

    count_fill(tel.orders.filled, "BTC-USD")
"""

from ._instruments import BoundSeries, Counter, Gauge, Histogram, Instrument, UpDownCounter

__all__ = ["BoundSeries", "Counter", "Gauge", "Histogram", "Instrument", "UpDownCounter"]
