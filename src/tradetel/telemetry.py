"""``configure()`` and the :class:`Telemetry` object that owns the whole pipeline.

Nothing happens at import. ``configure()`` resolves settings, builds the
MeterProvider with one shared reader, registers every catalog instrument on
one Meter, starts the backends it was asked for and returns a
:class:`Telemetry`; ``shutdown()`` flushes and closes all of it. A
process-wide default is an explicit opt-in: :func:`set_default`.

Lifecycle: the last interval is flushed by ``shutdown()``, at interpreter
exit (atexit), at the exit of a multiprocessing child (its finalizers, and on
the SIGTERM of ``Pool.terminate()``) and, with ``handle_sigterm``, on SIGTERM,
within ``shutdown_timeout``. After ``os.fork`` the child starts clean: empty
series, its own ``service.instance.id``, fresh locks, a new export thread and
no inherited Prometheus listener.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from . import _fork, _identity, _sigterm
from ._health import Health
from ._instruments import HANDLE_TYPES, Instrument

if TYPE_CHECKING:
    from ._catalog_types import DefaultInstruments as _TypedInstruments
    from ._exemplars import Exemplars
    from ._lifecycle import OrderTracker
else:
    _TypedInstruments = object  # the default catalog's instruments, typed for mypy only (see _stubs)
from ._pipeline import PushExporter, PushLoop, SharedReader
from ._sdk import (
    ForkAwareMeterProvider,
    SeriesStore,
    contract_problems,
    enable_provider,
    observable_counter_names,
    provider_resource,
    renew_lock,
    reset_after_fork,
    set_resource_attributes,
    view_instrument_match,
)
from ._series import OwnInstrument, OwnMetrics, OwnSeriesStore, TrackingMeter
from ._version import __version__
from .catalog import DEFAULT_CATALOG, Catalog, InstrumentSpec, Kind
from .config import Settings, load_settings
from .errors import ConfigurationError
from .labels import Normalizer
from .views import apply_overrides, build_views, series_limit

__all__ = ["Telemetry", "configure", "get_default", "set_default"]

_logger = logging.getLogger("tradetel")
METER_NAME = "tradetel"


class _Namespace:
    """Attribute access over dotted names: ``tel.orders.filled`` → the ``orders.filled`` handle."""

    __slots__ = ("__dict__", "_children", "_path")

    def __init__(self, path: str) -> None:
        self._path = path
        # Children live in the instance dict, so `tel.orders.filled` on the hot path is a plain
        # attribute lookup; __getattr__ only runs for names that are not in the catalog.
        self._children: dict[str, Any] = self.__dict__

    def __getattr__(self, name: str) -> Any:
        try:
            return self._children[name]
        except KeyError:
            raise AttributeError(f"no instrument or group {self._path}.{name} in the catalog") from None

    def __dir__(self) -> Iterable[str]:
        return list(self._children)

    def __repr__(self) -> str:
        return f"<instruments {self._path}.* : {', '.join(self._children)}>"


class Telemetry(_TypedInstruments):
    """The configured pipeline: catalog instruments, MeterProvider, reader, backends and servers.

    Build it with :func:`configure`; use it as a context manager or call
    :meth:`shutdown`.

    Example::

        with tradetel.configure(service_name="grid-bot") as tel:
            tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
            tel.trades.r_multiple.record(1.8, symbol="EURUSD", strategy="breakout")
    """

    def __init__(
        self, settings: Settings, catalog: Catalog | None = None, exporters: Iterable[PushExporter] = ()
    ) -> None:
        self.settings = settings
        base = catalog or DEFAULT_CATALOG
        if catalog is None or catalog.namespace == DEFAULT_CATALOG.namespace:
            base = base.with_namespace(settings.namespace)
        self.catalog = apply_overrides(base, settings.instruments)
        self._disabled = settings.disabled
        self._health = Health(settings.strict and not settings.disabled)  # disabled: a no-op never raises
        # The fast path records into the SDK's aggregations, only where the installed SDK keeps the
        # contract tradetel._sdk checks; otherwise catalog instruments are aggregated by tradetel._series.
        self.sdk_problems: tuple[str, ...] = contract_problems() if settings.fast_path else ()
        fast = settings.fast_path and not self.sdk_problems
        self.recording_path = "fast" if fast else "public"
        """``fast`` (recording into the SDK's aggregations) or ``public`` (the SDK's public API only)."""
        resource = _resource(settings)
        self._own: OwnMetrics | None = None
        if not fast:
            self._own = OwnMetrics(InstrumentationScope(METER_NAME, __version__), resource)
        self._reader = SharedReader(settings.cardinality_limit, self._own)
        provider_class = ForkAwareMeterProvider if fast else MeterProvider
        self.meter_provider = provider_class(
            metric_readers=[self._reader],
            resource=resource,
            views=build_views(self.catalog, settings.cardinality_limit) if fast else [],
            exemplar_filter=AlwaysOffExemplarFilter(),
            shutdown_on_exit=False,
        )
        if fast:
            # The SDK reads OTEL_SDK_DISABLED from os.environ and would hand out no-op instruments that
            # tradetel's handles cannot drive; tradetel has read it already (settings.disabled).
            enable_provider(self.meter_provider)
            self.meter = self.meter_provider.get_meter(METER_NAME, __version__)
            self._reader.observable_counters = lambda: observable_counter_names(self.meter_provider)
        else:
            tracking = TrackingMeter(self.meter_provider.get_meter(METER_NAME, __version__))
            self.meter = tracking  # type: ignore[assignment]
            self._reader.observable_counters = tracking.observable_counter_names
            if self.sdk_problems:
                self._health.fast_path_off(self.sdk_problems)
        self._instruments: dict[str, Instrument] = {}
        self._root = _Namespace("")
        self._normalizers: dict[tuple[str, str], Normalizer] = {}
        for spec in self.catalog.values():
            self._register(spec)
        for group, child in self._root._children.items():  # plain attributes, as in _Namespace
            if group not in vars(self) and not hasattr(type(self), group):
                setattr(self, group, child)
        self._health.bind(
            self._instruments["measurements.dropped"].otel_instrument,
            self._instruments["attributes.dropped"].otel_instrument,
            self._instruments["export.failures"].otel_instrument,
            self._instruments["cardinality.overflow"],  # a handle: counted through bound series
            self._instruments["export.duration"].otel_instrument,
        )
        self._exemplars = _install_exemplars(settings, self._instruments.values(), self._health, self._reader)
        if settings.runtime_metrics:
            from .runtime import register_runtime_metrics

            register_runtime_metrics(self.meter, self._health)
        self._closed = False
        self._close_lock = threading.Lock()
        self._streaks: dict[str, int] = {}  # exchange_call's consecutive errors per exchange
        self._streak_lock = threading.Lock()  # taken on every decorated exchange call
        self._order_tracker: OrderTracker | None = None
        self._shut_down = threading.Event()
        self._closing_thread: int | None = None
        self._servers: list[Any] = []
        handle_sigterm = settings.handle_sigterm and not settings.disabled
        # may raise: nothing started yet
        self._sigterm = _sigterm.install(self, required=True) if handle_sigterm else None
        pushed = list(exporters)
        self._push = PushLoop(self._reader, pushed, settings.export_interval, settings.export_timeout, self._health)
        self._health.start_at_zero(
            [(exporter.name, reason) for exporter in pushed for reason in getattr(exporter, "failure_reasons", ())],
            [handle.name for handle in self._instruments.values()],
        )
        self._push.start(self)
        self._atexit = _weak_atexit(self)
        self._multiprocessing_hook = False
        _fork.track(self)
        if _in_multiprocessing_child():
            _enter_multiprocessing_child(self)  # spawn and forkserver children, or configure() after a fork

    # --- instruments ------------------------------------------------------------------------------

    def _register(self, spec: InstrumentSpec) -> None:
        name = self.catalog.full_name(spec)
        normalizers = {}
        for attribute in spec.attributes:  # the policies of settings.instruments are in the catalog already
            normalizer = attribute.policy.build()
            normalizers[attribute.key] = normalizer
            self._normalizers[(name, attribute.key)] = normalizer
        create = {
            Kind.COUNTER: self.meter.create_counter,
            Kind.UP_DOWN_COUNTER: self.meter.create_up_down_counter,
            Kind.GAUGE: self.meter.create_gauge,
            Kind.HISTOGRAM: self.meter.create_histogram,
        }[spec.kind]
        store: SeriesStore | OwnSeriesStore
        if self._own is None:
            otel: Any = create(name, unit=spec.unit, description=spec.description)
            store = SeriesStore(view_instrument_match(self.meter_provider, self._reader, otel))
        else:
            otel = OwnInstrument(name, spec.unit, spec.description, spec.kind, spec.attribute_keys)
            store = OwnSeriesStore(otel, series_limit(spec, self.settings.cardinality_limit), spec.buckets or ())
            self._own.add(store)
        handle = HANDLE_TYPES[spec.kind](spec, name, otel, normalizers, self._health, store, self.settings.recording)
        self._instruments[spec.name] = handle
        node = self._root
        *groups, leaf = spec.name.split(".")
        for depth, group in enumerate(groups):
            child = node._children.get(group)
            if child is None:
                child = node._children[group] = _Namespace(".".join(groups[: depth + 1]))
            if not isinstance(child, _Namespace):
                raise ConfigurationError(
                    f"catalog[{spec.name!r}]", spec.name, f"a name that does not extend the instrument {child.name!r}"
                )
            node = child
        if leaf in node._children:
            raise ConfigurationError(
                f"catalog[{spec.name!r}]", spec.name, "a name that is not also a group of other instruments"
            )
        node._children[leaf] = handle

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._root, name)

    def __getitem__(self, name: str) -> Instrument:
        """The handle for a catalog name, relative (``orders.filled``) or full (``trading.orders.filled``)."""
        return self.instrument(name)

    @property
    def order_tracker(self) -> OrderTracker:
        """The order lifecycle tracker recording into this pipeline, built at first use (see ``tradetel.orders``)."""
        tracker = self._order_tracker
        if tracker is None:
            from ._lifecycle import OrderTracker

            with self._close_lock:
                tracker = self._order_tracker
                if tracker is None:
                    tracker = self._order_tracker = OrderTracker(self)
        return tracker

    def _error_streak(self, key: str, failed: bool) -> int:
        """Consecutive failures under ``key`` (an exchange) across the decorated calls recording here; 0 on success."""
        with self._streak_lock:
            value = self._streaks.get(key, 0) + 1 if failed else 0
            self._streaks[key] = value
            return value

    def instrument(self, name: str) -> Instrument:
        found = self._instruments.get(name)
        if found is None:
            prefix = self.catalog.namespace + "."
            found = self._instruments.get(name.removeprefix(prefix).removeprefix("tradetel."))
        if found is None:
            raise KeyError(f"no instrument {name!r} in the catalog")
        return found

    def instruments(self) -> Mapping[str, Instrument]:
        return dict(self._instruments)

    # --- collection and backends ------------------------------------------------------------------

    @property
    def strict(self) -> bool:
        return self._health.strict

    @property
    def health(self) -> Health:
        return self._health

    def collect(self, timeout: float = 10.0) -> MetricsData:
        """Collect everything recorded so far (cumulative), as OpenTelemetry ``MetricsData``.

        Empty when tradetel is disabled (``OTEL_SDK_DISABLED=true``).
        """
        if self._disabled:
            return MetricsData(resource_metrics=[])
        self._record_folds()
        return self._reader.snapshot(timeout)

    def _record_folds(self) -> None:
        folded = self._instruments["attributes.folded"]
        for (name, key), normalizer in self._normalizers.items():
            count = normalizer.folded
            if count:
                # folded is a running count; move it into the counter without losing concurrent folds
                normalizer.folded -= count
                folded.otel_instrument.add(count, {"instrument": name, "key": key})
                self._health.log_once(
                    name,
                    "folded:" + key,
                    "tradetel: label policy of %s folded values of attribute %r (fallback or truncation); "
                    "counted in tradetel.attributes.folded",
                    name,
                    key,
                    level=logging.INFO,
                )

    def add_server(self, server: Any) -> None:
        """Hand a server (anything with ``close()``) to this object; it is closed on shutdown."""
        self._servers.append(server)

    @property
    def prometheus_url(self) -> str | None:
        for server in self._servers:
            url = getattr(server, "url", None)
            if url:
                return str(url)
        return None

    def force_flush(self) -> None:
        """Export to push backends now, without waiting for the interval."""
        self._push.export_once()

    @property
    def shutdown_timeout(self) -> float:
        return self.settings.shutdown_timeout

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush the last interval to push backends, stop servers and threads. Idempotent.

        The final flush gets ``timeout`` seconds (default ``shutdown_timeout``); an exporter still
        retrying a dead backend then is aborted, and the miss is counted and logged. A call while
        another thread is shutting down waits for that shutdown (at most the deadline), so that
        atexit and the SIGTERM handler never end the process in the middle of each other's flush.
        """
        deadline = self.settings.shutdown_timeout if timeout is None else timeout
        with self._close_lock:
            closed, self._closed = self._closed, True
            if not closed:
                self._closing_thread = threading.get_ident()
        if closed:
            if self._closing_thread != threading.get_ident():
                self._shut_down.wait(deadline)
            return
        try:
            self._shutdown(deadline)
        finally:
            self._shut_down.set()

    def _shutdown(self, deadline: float) -> None:
        atexit.unregister(self._atexit)
        self._record_folds()
        self._push.shutdown(deadline)
        for server in self._servers:
            try:
                server.close()
            except Exception:
                _logger.warning("tradetel: closing %r failed", server, exc_info=True)
        self.meter_provider.shutdown(timeout_millis=deadline * 1000)
        if get_default() is self:
            set_default(None)
        if self._sigterm is not None:
            # Only now: a SIGTERM during the flush (Pool.terminate() during a worker's exit) must not kill it.
            _sigterm.uninstall(self._sigterm, self)

    # --- fork -------------------------------------------------------------------------------------

    def _before_fork(self) -> None:
        """In the parent, just before ``os.fork``: make sure a multiprocessing child flushes at its exit."""
        if self._multiprocessing_hook or self._closed:
            return
        util = sys.modules.get("multiprocessing.util")
        if util is not None:
            # multiprocessing children leave through os._exit(), which skips atexit; they run
            # multiprocessing's own finalizers instead, registered by this after-fork callback.
            util.register_after_fork(self, _finalize_in_multiprocessing_child)
            self._multiprocessing_hook = True

    def _after_fork_in_child(self) -> None:
        """In a forked child: start from empty series under a new instance id, with fresh locks and threads.

        The parent keeps its own state, threads and Prometheus listener; the child exports only
        what it records itself, under its own ``service.instance.id``, so that no series is
        exported twice or overwritten at the collector.
        """
        renew_lock(self, "_close_lock")
        renew_lock(self, "_streak_lock")
        self._shut_down = threading.Event()
        if self._closed:
            self._shut_down.set()  # a shutdown running in another thread of the parent is not the child's
            return
        if self._own is None:
            reset_after_fork(self.meter_provider, _child_instance_id(self.settings.instance_id))
        else:
            self._own.reset_after_fork(_child_instance_id(self.settings.instance_id))
        renew_lock(self._health, "_lock")
        self._order_tracker = None  # the parent's open orders are the parent's to follow
        if self._exemplars is not None:
            self._exemplars.clear()
        for normalizer in self._normalizers.values():
            renew_lock(normalizer, "_lock")
            normalizer.folded = 0  # the parent's pending folds are the parent's to count
        for server in self._servers:
            close = getattr(server, "close_in_child", None)
            if close is not None:
                close()
        self._servers = []  # the parent serves /metrics; the child owns no server
        self._push.after_fork_in_child()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def resource(self) -> Resource:
        """The resource every export carries (``service.name``, ``service.instance.id``...)."""
        if self._own is not None:
            return self._own.resource
        return provider_resource(self.meter_provider)

    def _merge_resource(self, attributes: Mapping[str, str]) -> None:
        """Merge ``attributes`` into the resource of every later export (a gunicorn worker's identity).

        On the public path every export carries the resource of the catalog's own metrics; on the
        fast path, the MeterProvider's.
        """
        if self._own is not None:
            self._own.resource = self._own.resource.merge(Resource(dict(attributes)))
        else:
            set_resource_attributes(self.meter_provider, dict(attributes))

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        exporters = ",".join(self.settings.exporters) or "none"
        return (
            f"<Telemetry service={self.settings.service_name!r} namespace={self.catalog.namespace!r} "
            f"instruments={len(self._instruments)} exporters={exporters} closed={self._closed}>"
        )


def _install_exemplars(
    settings: Settings, handles: Iterable[Instrument], health: Health, reader: SharedReader
) -> Exemplars | None:
    """Exemplar wrappers on the catalog's counters and histograms, when the filter can let anything through.

    Otherwise (``always_off``; ``trace_based`` without a tracer provider) nothing is installed and the
    recording methods stay the generated functions.
    """
    from ._exemplars import Exemplars, sampler_for

    sampler = None if settings.disabled else sampler_for(settings.exemplar_filter)
    if sampler is None:
        return None
    exemplars = Exemplars(sampler, health)
    for handle in handles:
        if handle.spec.kind in (Kind.COUNTER, Kind.HISTOGRAM) and not handle.spec.self_metric:
            exemplars.install(handle)
    reader.decorate = exemplars.attach
    return exemplars


def _weak_atexit(telemetry: Telemetry) -> Any:
    ref = weakref.ref(telemetry)

    def flush_at_exit() -> None:
        alive = ref()
        if alive is not None:
            alive.shutdown()

    atexit.register(flush_at_exit)
    return flush_at_exit


def _in_multiprocessing_child() -> bool:
    process = sys.modules.get("multiprocessing.process")
    return process is not None and process.parent_process() is not None


def _enter_multiprocessing_child(telemetry: Telemetry) -> None:
    """In a multiprocessing child: flush at its exit and on the SIGTERM of ``Pool.terminate()``.

    Multiprocessing children of the fork and forkserver start methods leave through
    ``os._exit()``, which skips atexit; they run multiprocessing's finalizers instead.
    ``Pool.__exit__`` calls ``terminate()``, which SIGTERMs workers that have not exited yet
    (possibly in the middle of their exit flush) and then waits for them.
    """
    from multiprocessing.util import Finalize

    if telemetry.closed:
        return
    Finalize(telemetry, telemetry._atexit, exitpriority=10)
    if telemetry._push.pushes and telemetry._sigterm is None:
        telemetry._sigterm = _sigterm.install_in_multiprocessing_child(telemetry)


def _finalize_in_multiprocessing_child(telemetry: Telemetry) -> None:
    _enter_multiprocessing_child(telemetry)


def _child_instance_id(configured: str | None) -> str:
    """A forked child's ``service.instance.id``: the configured id with the child's pid, else a new random id."""
    return f"{configured}-{os.getpid()}" if configured else str(uuid.uuid4())


def _resource(settings: Settings) -> Resource:
    attributes: dict[str, Any] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": _sdk_version(),
        "telemetry.distro.name": "tradetel",
        "telemetry.distro.version": __version__,
    }
    attributes.update(settings.resource_attributes)
    attributes["service.name"] = settings.service_name
    attributes["service.instance.id"] = settings.instance_id or str(uuid.uuid4())
    if settings.service_version:
        attributes["service.version"] = settings.service_version
    if settings.environment:
        attributes["deployment.environment.name"] = settings.environment
    return Resource(attributes)


def _sdk_version() -> str:
    from importlib.metadata import version

    return version("opentelemetry-sdk")


def _self_instruments() -> tuple[InstrumentSpec, ...]:
    return tuple(spec for spec in DEFAULT_CATALOG.values() if spec.self_metric)


def _ensure_self_metrics(catalog: Catalog) -> Catalog:
    missing = [spec for spec in _self_instruments() if spec.name not in catalog]
    return catalog.extend(missing) if missing else catalog


def configure(
    *,
    catalog: Catalog | Iterable[InstrumentSpec] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    prometheus_registry: Any = None,
    **settings: Any,
) -> Telemetry:
    """Build a :class:`Telemetry`: settings, MeterProvider, catalog instruments and backends.

    Args:
        catalog: the instrument catalog; default :data:`~tradetel.catalog.DEFAULT_CATALOG`. A list of
            :class:`~tradetel.catalog.InstrumentSpec` extends the default catalog.
        config_file: a TOML or YAML file (default: ``TRADETEL_CONFIG_FILE``).
        env: the environment to read instead of ``os.environ`` (tests).
        prometheus_registry: a ``prometheus_client`` registry whose families tradetel's endpoint serves
            after its own (``docs/coexisting.md``).
        **settings: any setting by argument name: ``service_name``, ``exporters``
            (``"prometheus,otlp"`` or a list, whose items may also be exporter objects:
            :mod:`tradetel.exporters.base`), ``prometheus_port``, ``strict``... See
            :data:`tradetel.config.SETTINGS`.

    Raises:
        ConfigurationError: a setting, catalog entry or port is unusable.

    Example::

        tel = tradetel.configure(service_name="grid-bot", exporters=["prometheus", "dogstatsd"])
    """
    custom = _custom_exporters(settings)
    resolved = load_settings(settings, env=env, config_file=config_file)  # disabled: exporters are ()
    resolved = _identity.worker_settings(resolved)  # in a worker of a pre-fork server: its own identity
    if catalog is None:
        table = DEFAULT_CATALOG
    elif isinstance(catalog, Catalog):
        table = _ensure_self_metrics(catalog)
    else:
        table = DEFAULT_CATALOG.extend(catalog)
    push: list[PushExporter] = []
    for name in resolved.exporters:
        if name == "otlp":
            from .exporters.otlp import OtlpExporter

            push.append(OtlpExporter(resolved.otlp))
        elif name == "dogstatsd":
            from .exporters.dogstatsd import DogStatsdExporter

            push.append(DogStatsdExporter(resolved.dogstatsd))
        elif name == "console":
            from .exporters.console import ConsoleExporter

            push.append(ConsoleExporter())
    if not resolved.disabled:
        push += custom
    _distinct_names(push)
    sources = []
    if prometheus_registry is not None:
        if "prometheus" not in resolved.exporters:
            raise ConfigurationError("prometheus_registry", type(prometheus_registry).__name__, _NEEDS_PROMETHEUS)
        from .exporters.prometheus_client import RegistrySource

        sources.append(RegistrySource(prometheus_registry))
    telemetry = Telemetry(resolved, table, push)
    for source in sources:
        source.bind(telemetry)
    try:
        if "prometheus" in resolved.exporters:
            from .exporters.prometheus import PrometheusServer

            telemetry.add_server(PrometheusServer.from_settings(telemetry.collect, resolved.prometheus, sources))
        if resolved.set_global_meter_provider:
            from .otel_global import install_global_meter_provider

            install_global_meter_provider(telemetry)
    except BaseException:
        telemetry.shutdown(timeout=1.0)
        raise
    return telemetry


_EXPORTER_FORMS = (
    "backend names (prometheus, otlp, dogstatsd, console, none) and objects with a name, export(data, timeout) and "
    "shutdown(timeout) (tradetel.exporters.base.PushExporter)"
)


def _custom_exporters(settings: dict[str, Any]) -> list[PushExporter]:
    """Take the exporter objects out of an ``exporters=[...]`` list, leaving the names for the settings."""
    given = settings.get("exporters")
    if not isinstance(given, list | tuple) or all(isinstance(item, str) for item in given):
        return []
    names = [item for item in given if isinstance(item, str)]
    objects = [item for item in given if not isinstance(item, str)]
    for item in objects:
        name = getattr(item, "name", None)
        methods = callable(getattr(item, "export", None)) and callable(getattr(item, "shutdown", None))
        if not isinstance(name, str) or not name or not methods:
            raise ConfigurationError("exporters", type(item).__name__, _EXPORTER_FORMS)
    settings["exporters"] = names or "none"
    return objects


def _distinct_names(exporters: list[PushExporter]) -> None:
    names = [exporter.name for exporter in exporters]
    if len(set(names)) != len(names):
        raise ConfigurationError("exporters", names, "exporters with distinct names (failures are counted by name)")


_NEEDS_PROMETHEUS = "None unless the prometheus exporter is on (exporters='prometheus' or OTEL_METRICS_EXPORTER)"


_default: Telemetry | None = None


def set_default(telemetry: Telemetry | None) -> None:
    """Opt in to a process-wide default (used by decorators given no ``telemetry=``); ``None`` clears it."""
    global _default
    _default = telemetry


def get_default() -> Telemetry | None:
    """The process-wide default set by :func:`set_default`, or ``None``."""
    return _default
