"""tradetel's MeterProvider as the global OpenTelemetry one, for ``opentelemetry-instrumentation-*`` packages.

Instrumentation packages (FastAPI, requests, aiohttp, system metrics...)
record on the global MeterProvider unless given one. With
:func:`install_global_meter_provider` (or ``configure(set_global_meter_provider=True)``,
``TRADETEL_SET_GLOBAL_METER_PROVIDER=true``) their metrics flow through
tradetel's pipeline: its single reader, its exporters and its series limit
(``cardinality_limit`` applies to every instrument outside the catalog).

OpenTelemetry lets a process set its global MeterProvider once. tradetel
therefore sets it once, to a small switch that forwards to the provider of
the :class:`~tradetel.Telemetry` installed last:

- a later ``configure(set_global_meter_provider=True)`` takes the global
  over (the earlier Telemetry keeps its own catalog instruments and stops
  receiving the instrumentations' measurements);
- ``shutdown()`` of the installed Telemetry detaches it; until the next
  install, instrumentations record nothing (as before any SDK is set up);
- instruments created before an install, or under an earlier Telemetry,
  are re-created on the new provider, so instrumenting once at start-up is
  enough.

When something else set the global first (``opentelemetry-instrument``
does, even with ``OTEL_METRICS_EXPORTER=none``), installing raises a
:class:`~tradetel.errors.ConfigurationError`: pass
``meter_provider=tel.meter_provider`` to the instrumentor instead.

Example::

    tel = tradetel.configure(set_global_meter_provider=True)
    FastAPIInstrumentor.instrument_app(app)   # http.server.* now on tradetel's /metrics
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import metrics as api
from opentelemetry.context import Context
from opentelemetry.util.types import Attributes

from .errors import ConfigurationError

__all__ = ["install_global_meter_provider", "installed_telemetry", "port_taken_hint"]

_logger = logging.getLogger("tradetel")
_SETTING = "set_global_meter_provider/TRADETEL_SET_GLOBAL_METER_PROVIDER"


def install_global_meter_provider(telemetry: Any) -> None:
    """Make ``telemetry``'s MeterProvider receive what is recorded through the global OpenTelemetry API.

    Calling it again with another Telemetry moves the global to that one.

    Raises:
        ConfigurationError: ``telemetry`` is shut down, or the process's global MeterProvider was already set
            by something else (``opentelemetry-instrument``, another SDK set-up).

    Example::

        tel = tradetel.configure()
        install_global_meter_provider(tel)
    """
    if telemetry.closed:
        raise ConfigurationError(_SETTING, repr(telemetry), "a Telemetry that is not shut down")
    switch = _switch()
    current = api.get_meter_provider()
    if current is not switch:
        api.set_meter_provider(switch)  # ignored (and logged by OpenTelemetry) when the global is already set
        current = api.get_meter_provider()
    if current is not switch:
        raise ConfigurationError(
            _SETTING,
            True,
            f"a process whose global OpenTelemetry MeterProvider is not set yet; it is a {type(current).__module__}."
            f"{type(current).__qualname__}, set first (opentelemetry-instrument and the OpenTelemetry distro set one). "
            "Pass meter_provider=tel.meter_provider to the instrumentors instead "
            "(e.g. FastAPIInstrumentor.instrument_app(app, meter_provider=tel.meter_provider))",
        )
    switch.attach(telemetry)


def installed_telemetry() -> Any:
    """The Telemetry the global MeterProvider forwards to, or ``None``."""
    return _SWITCH.attached() if _SWITCH is not None else None


def port_taken_hint(port: int) -> str:
    """The likely cause and fix of a taken Prometheus port, for the start-up error."""
    exporters = os.environ.get("OTEL_METRICS_EXPORTER", "")
    sdk_server = "opentelemetry.exporter.prometheus" in sys.modules and "prometheus" in exporters
    cause = (
        "this process runs opentelemetry-exporter-prometheus with OTEL_METRICS_EXPORTER="
        f"{exporters.strip()}, so the OpenTelemetry SDK set up from the environment (opentelemetry-instrument) "
        "serves its own /metrics on OTEL_EXPORTER_PROMETHEUS_PORT"
        if sdk_server
        else "another process, or an OpenTelemetry SDK set up from the environment (opentelemetry-instrument with "
        "OTEL_METRICS_EXPORTER=prometheus serves its own /metrics on OTEL_EXPORTER_PROMETHEUS_PORT, default 9464)"
    )
    return (
        f"port {port} is taken; likely cause: {cause}. Fix: give tradetel another port (prometheus_port=...); "
        "or serve both on the SDK's port: configure tradetel with exporters='none' and register "
        "tradetel.exporters.prometheus_client.TradetelCollector(tel, target_info=False) on prometheus_client's "
        "REGISTRY; or run opentelemetry-instrument with OTEL_METRICS_EXPORTER=none and pass exporters='prometheus' "
        "to tradetel.configure(). See docs/coexisting.md"
    )


# --- the switch ------------------------------------------------------------------------------------


class _Switch(api.MeterProvider):
    """The global MeterProvider: forwards every meter to the provider of the attached Telemetry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._meters: dict[tuple[Any, ...], _Meter] = {}
        self._telemetry: weakref.ref[Any] | None = None

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> api.Meter:
        key = (name, version, schema_url, tuple(sorted((k, repr(v)) for k, v in (attributes or {}).items())))
        with self._lock:
            meter = self._meters.get(key)
            if meter is None:
                meter = self._meters[key] = _Meter(name, version, schema_url, attributes)
                meter.point(self._provider())
            return meter

    def _provider(self) -> Any:
        telemetry = self._telemetry() if self._telemetry is not None else None
        return telemetry.meter_provider if telemetry is not None else None

    def attached(self) -> Any:
        return self._telemetry() if self._telemetry is not None else None

    def attach(self, telemetry: Any) -> None:
        with self._lock:
            previous = self.attached()
            if previous is telemetry:
                return
            self._telemetry = weakref.ref(telemetry)
            for meter in self._meters.values():
                meter.point(telemetry.meter_provider)
        if previous is not None:
            _logger.info("tradetel: the global MeterProvider moved from %r to %r", previous, telemetry)
        telemetry.add_server(_Detach(self, telemetry))

    def detach(self, telemetry: Any) -> None:
        with self._lock:
            if self.attached() is not telemetry:
                return
            self._telemetry = None
            for meter in self._meters.values():
                meter.point(None)
        _logger.info("tradetel: %r shut down; the global MeterProvider records nothing until an install", telemetry)


class _Detach:
    """Handed to the Telemetry as a "server": its shutdown detaches the global MeterProvider."""

    def __init__(self, switch: _Switch, telemetry: Any) -> None:
        self._switch = switch
        self._telemetry = weakref.ref(telemetry)

    def close(self) -> None:
        telemetry = self._telemetry()
        if telemetry is not None:
            self._switch.detach(telemetry)

    def __repr__(self) -> str:
        return "<global MeterProvider>"


_SWITCH: _Switch | None = None
_SWITCH_LOCK = threading.Lock()


def _switch() -> _Switch:
    global _SWITCH
    with _SWITCH_LOCK:
        if _SWITCH is None:
            _SWITCH = _Switch()
        return _SWITCH


class _Meter(api.Meter):
    """A meter whose instruments forward to the same-named instruments of the current provider."""

    def __init__(self, name: str, version: str | None, schema_url: str | None, attributes: Attributes | None) -> None:
        super().__init__(name, version=version, schema_url=schema_url)
        self._attributes = attributes
        self._lock = threading.Lock()
        self._instruments: list[_Proxy] = []
        self._real: Any = None

    def point(self, provider: Any) -> None:
        """Forward to ``provider`` (an SDK MeterProvider), or to nothing with ``None``."""
        with self._lock:
            meter = None
            if provider is not None:
                meter = provider.get_meter(self.name, self.version, self.schema_url, self._attributes)
            self._real = meter
            for instrument in self._instruments:
                instrument.point(meter)

    def _add(self, proxy: _Proxy) -> Any:
        with self._lock:
            self._instruments.append(proxy)
            proxy.point(self._real)
        return proxy

    def create_counter(self, name: str, unit: str = "", description: str = "") -> api.Counter:
        create = _creator("create_counter", name, unit, description)
        return self._add(_Counter(name, unit, description, create))  # type: ignore[no-any-return]

    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> api.UpDownCounter:
        create = _creator("create_up_down_counter", name, unit, description)
        return self._add(_UpDownCounter(name, unit, description, create))  # type: ignore[no-any-return]

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> api.Histogram:
        def create(meter: Any) -> Any:
            return meter.create_histogram(
                name, unit, description, explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory
            )

        return self._add(_Histogram(name, unit, description, create))  # type: ignore[no-any-return]

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> api._Gauge:
        create = _creator("create_gauge", name, unit, description)
        return self._add(_Gauge(name, unit, description, create))  # type: ignore[no-any-return]

    def create_observable_counter(
        self, name: str, callbacks: Sequence[api.CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> api.ObservableCounter:
        create = _creator("create_observable_counter", name, unit, description, callbacks)
        return self._add(_ObservableCounter(name, unit, description, create))  # type: ignore[no-any-return]

    def create_observable_up_down_counter(
        self, name: str, callbacks: Sequence[api.CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> api.ObservableUpDownCounter:
        create = _creator("create_observable_up_down_counter", name, unit, description, callbacks)
        return self._add(_ObservableUpDownCounter(name, unit, description, create))  # type: ignore[no-any-return]

    def create_observable_gauge(
        self, name: str, callbacks: Sequence[api.CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> api.ObservableGauge:
        create = _creator("create_observable_gauge", name, unit, description, callbacks)
        return self._add(_ObservableGauge(name, unit, description, create))  # type: ignore[no-any-return]


def _creator(method: str, name: str, unit: str, description: str, callbacks: Any = None) -> Callable[[Any], Any]:
    if callbacks is None:
        return lambda meter: getattr(meter, method)(name, unit=unit, description=description)
    return lambda meter: getattr(meter, method)(name, callbacks=callbacks, unit=unit, description=description)


class _Proxy:
    """Forwards to the real instrument on the current provider's meter; records nothing without one."""

    def __init__(self, name: str, unit: str, description: str, create: Callable[[Any], Any]) -> None:
        super().__init__(name, unit=unit, description=description)  # type: ignore[call-arg]
        self._create = create
        self._real: Any = None

    def point(self, meter: Any) -> None:
        self._real = self._create(meter) if meter is not None else None


class _Counter(_Proxy, api.Counter):
    def add(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None:
        real = self._real
        if real is not None:
            real.add(amount, attributes, context)


class _UpDownCounter(_Proxy, api.UpDownCounter):
    def add(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None:
        real = self._real
        if real is not None:
            real.add(amount, attributes, context)


class _Histogram(_Proxy, api.Histogram):
    def record(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None:
        real = self._real
        if real is not None:
            real.record(amount, attributes, context)


class _Gauge(_Proxy, api._Gauge):
    def set(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None:
        real = self._real
        if real is not None:
            real.set(amount, attributes, context)


class _ObservableCounter(_Proxy, api.ObservableCounter):
    pass


class _ObservableUpDownCounter(_Proxy, api.ObservableUpDownCounter):
    pass


class _ObservableGauge(_Proxy, api.ObservableGauge):
    pass
