"""The generic decorators: a catalog name or handle in, one instrument recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from .. import _extractors as extract
from .._instruments import Instrument
from ..catalog import Kind
from ..errors import ConfigurationError
from ..telemetry import Telemetry
from ._framework import ArgSource, Call, Instrumentation, ResultSource, _Plan, emit

# --- generic decorators ----------------------------------------------------------------------------


class _Generic(Instrumentation):
    _kinds: ClassVar[tuple[Kind, ...]] = ()

    def __init__(
        self,
        instrument: str | Instrument,
        /,
        *,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        from_result: Mapping[str, ResultSource] | None = None,
        **attributes: object,
    ) -> None:
        if not isinstance(instrument, str | Instrument):
            raise ConfigurationError(f"{self._name}(instrument)", instrument, "a catalog name or an instrument handle")
        self._instrument = instrument
        super().__init__(telemetry=telemetry, attributes=attributes, from_args=from_args, from_result=from_result)

    def _roles(self) -> dict[str, tuple[str | Instrument, tuple[Kind, ...]]]:
        return {"main": (self._instrument, self._kinds)}

    def __repr__(self) -> str:
        name = self._instrument if isinstance(self._instrument, str) else self._instrument.name
        attributes = "".join(f", {k}={v!r}" for k, v in self._static.items())
        return f"<{self._name}({name!r}{attributes})>"


class timed(_Generic):  # noqa: N801 - a decorator reads as a function
    """Record each call's duration in seconds into a histogram.

    Args:
        instrument: catalog name (``"orders.latency"``) or histogram handle.
        telemetry: where to record; default :func:`tradetel.get_default` at call time.
        from_args: attribute key → parameter name (dotted path allowed) or callable of the bound arguments.
        from_result: attribute key → result field path or callable of the result (only when the call returns).
        **attributes: static attribute values.

    Example::

        @timed("strategy.stage.duration", strategy="grid", stage="signals")
        def compute_signals(candles): ...

        with timed("strategy.stage.duration", strategy="grid", stage="risk", telemetry=tel):
            check_risk()
    """

    _name = "timed"
    _kinds = (Kind.HISTOGRAM,)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        emit(call, plan, "record", "main", duration)


class counted(_Generic):  # noqa: N801 - a decorator reads as a function
    """Add 1 to a counter each time a call completes, whether it returns or raises.

    Args: as :class:`timed`, with a counter.

    Example::

        @counted("orders.filled", exchange="binance", from_result={"symbol": "symbol", "side": "side"})
        def on_fill(event): ...
    """

    _name = "counted"
    _kinds = (Kind.COUNTER, Kind.UP_DOWN_COUNTER)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        emit(call, plan, "add", "main", 1)


class in_flight(_Generic):  # noqa: N801 - a decorator reads as a function
    """Hold +1 on an up-down counter while a call (or a generator's iteration) runs.

    Args: as :class:`timed`, with an up-down counter; no ``from_result`` (the
    same attributes must go up and down).

    Example::

        @in_flight("signals.in_flight", source="tradingview")
        async def handle(payload): ...
    """

    _name = "in_flight"
    _kinds = (Kind.UP_DOWN_COUNTER,)

    def __init__(
        self,
        instrument: str | Instrument,
        /,
        *,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        **attributes: object,
    ) -> None:
        super().__init__(instrument, telemetry=telemetry, from_args=from_args, from_result=None, **attributes)

    def _enter(self, call: Call, plan: _Plan) -> None:
        call.entered = call.attributes
        emit(call, plan, "add", "main", 1)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        emit(call, plan, "add", "main", -1, call.entered)


class count_exceptions(_Generic):  # noqa: N801 - a decorator reads as a function
    """Count exceptions escaping a call, with ``error_type`` folded to a canonical type when the counter has that key.

    The error type is the exception's class name and message categorised by
    :data:`tradetel.labels.ERROR_TYPE` (``timeout``, ``rate_limit``,
    ``auth_error``, ``not_found``, ``server_error``, ``connection_error``,
    ``invalid_request`` or ``other``). The exception is re-raised unchanged.

    Args:
        instrument: catalog name or counter handle, e.g. ``"exchange.errors"``.
        exceptions: the exception class (or tuple) to count; default :class:`Exception`.
        telemetry, from_args, **attributes: as :class:`timed`.

    Example::

        @count_exceptions("exchange.errors", exchange="kraken", endpoint="fetch_balance")
        def fetch_balance(): ...
    """

    _name = "count_exceptions"
    _kinds = (Kind.COUNTER,)

    def __init__(
        self,
        instrument: str | Instrument,
        /,
        *,
        exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        telemetry: Telemetry | None = None,
        from_args: Mapping[str, ArgSource] | None = None,
        **attributes: object,
    ) -> None:
        self._exceptions = exceptions
        super().__init__(instrument, telemetry=telemetry, from_args=from_args, from_result=None, **attributes)

    def _exit(self, call: Call, plan: _Plan, duration: float, exc: BaseException | None) -> None:
        if exc is None or not isinstance(exc, self._exceptions):
            return
        if "error_type" in plan.keys["main"]:
            emit(call, plan, "add", "main", 1, error_type=extract.error_type(exc))
        else:
            emit(call, plan, "add", "main", 1)
