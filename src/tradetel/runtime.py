"""Process and Python runtime metrics under OpenTelemetry semantic-convention names, and event-loop lag.

:func:`tradetel.configure` registers :data:`RUNTIME_METRICS` on its Meter
unless ``runtime_metrics=False`` (``TRADETEL_RUNTIME_METRICS=false``). They
are observable instruments: their callbacks read ``getrusage``,
``/proc/self`` and ``gc.get_stats()`` when a backend collects (a scrape or a
push), so nothing of theirs runs on the trading thread. A value that cannot
be read is left out of that collection, counted in
``tradetel.measurements.dropped`` and logged once, never reported as zero.
On a system without ``/proc`` the metrics read from it are not registered.

They keep their semantic-convention names whatever the namespace:
``process.cpu.time`` is ``process_cpu_time_seconds_total`` in Prometheus.

Event-loop lag is opt-in, for bots that run an asyncio loop:
:func:`watch_event_loop` schedules a timer callback on the loop every
``interval`` seconds and records how late it runs in the
``python.asyncio.event_loop.lag`` histogram. A callback, a slow coroutine
step or a blocking call that holds the loop shows up as lag.

Example::

    import asyncio
    import tradetel
    from tradetel.runtime import watch_event_loop

    async def main() -> None:
        with tradetel.configure(service_name="grid-bot") as tel:
            watch = watch_event_loop(tel, interval=0.25)
            ...  # the bot
            watch.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Histogram, Observation

from .catalog import Kind
from .errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

    from ._health import Health
    from .telemetry import Telemetry

__all__ = [
    "EVENT_LOOP_LAG",
    "EVENT_LOOP_LAG_BUCKETS",
    "RUNTIME_METRICS",
    "EventLoopWatch",
    "RuntimeMetric",
    "register_runtime_metrics",
    "watch_event_loop",
]

_PROC = "/proc/self"
_Reading = Iterable[tuple[float | int, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class RuntimeMetric:
    """One runtime metric: its semantic-convention name, kind, unit, attributes and where it is read.

    Example::

        >>> from tradetel.runtime import RUNTIME_METRICS
        >>> [m.unit for m in RUNTIME_METRICS if m.name == "process.cpu.time"]
        ['s']
    """

    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...]
    source: str
    read: Callable[[_State], _Reading]
    needs_proc: bool = False


class _State:
    """What the callbacks of one registration share: the previous CPU reading, for the utilisation."""

    __slots__ = ("cpu",)

    def __init__(self) -> None:
        self.cpu: tuple[int, float, float, float] | None = None  # pid, monotonic time, user, system
        with contextlib.suppress(ImportError):  # no getrusage: no utilisation either
            self.cpu = (os.getpid(), time.monotonic(), *_cpu_times())


def _available_cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def _cpu_times() -> tuple[float, float]:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _cpu_time(state: _State) -> _Reading:
    user, system = _cpu_times()
    return ((user, {"cpu.mode": "user"}), (system, {"cpu.mode": "system"}))


def _cpu_utilization(state: _State) -> _Reading:
    pid, now = os.getpid(), time.monotonic()
    user, system = _cpu_times()
    before, state.cpu = state.cpu, (pid, now, user, system)
    if before is None or before[0] != pid:
        # the first collection in a forked child: the previous reading is the parent's, whose
        # CPU times are not this process's, so there is no honest value yet
        return ()
    _, then, user_before, system_before = before
    elapsed = (now - then) * _available_cpus()
    if elapsed <= 0:
        return ()
    return (
        ((user - user_before) / elapsed, {"cpu.mode": "user"}),
        ((system - system_before) / elapsed, {"cpu.mode": "system"}),
    )


def _context_switches(state: _State) -> _Reading:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (
        (usage.ru_nvcsw, {"process.context_switch.type": "voluntary"}),
        (usage.ru_nivcsw, {"process.context_switch.type": "involuntary"}),
    )


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _statm() -> list[int]:
    with open(f"{_PROC}/statm", "rb") as file:
        return [int(field) for field in file.read().split()[:2]]


def _memory_usage(state: _State) -> _Reading:
    return ((_statm()[1] * _PAGE_SIZE, {}),)


def _memory_virtual(state: _State) -> _Reading:
    return ((_statm()[0] * _PAGE_SIZE, {}),)


def _thread_count(state: _State) -> _Reading:
    with open(f"{_PROC}/stat", "rb") as file:
        # the command name (field 2) may contain spaces and parentheses: count fields after the last ')'
        fields = file.read().rpartition(b")")[2].split()
    return ((int(fields[17]), {}),)  # field 20, num_threads


def _file_descriptor_count(state: _State) -> _Reading:
    # the listing includes the descriptor of the directory being listed, open while it is read
    return ((len(os.listdir(f"{_PROC}/fd")) - 1, {}),)


def _gc(field: str) -> Callable[[_State], _Reading]:
    def read(state: _State) -> _Reading:
        return tuple((stats[field], {"cpython.gc.generation": generation}) for generation, stats in _gc_stats())

    return read


def _gc_stats() -> Iterable[tuple[int, dict[str, int]]]:
    return enumerate(gc.get_stats())


_CPU_MODE = ("cpu.mode",)
_GENERATION = ("cpython.gc.generation",)

RUNTIME_METRICS: tuple[RuntimeMetric, ...] = (
    RuntimeMetric(
        "process.cpu.time",
        Kind.COUNTER,
        "s",
        "Total CPU seconds of the process, by CPU mode.",
        _CPU_MODE,
        "getrusage(RUSAGE_SELF): ru_utime, ru_stime",
        _cpu_time,
    ),
    RuntimeMetric(
        "process.cpu.utilization",
        Kind.GAUGE,
        "1",
        "CPU time since the previous collection, divided by the elapsed time and the CPUs available to the process.",
        _CPU_MODE,
        "getrusage(RUSAGE_SELF) and sched_getaffinity, between two collections",
        _cpu_utilization,
    ),
    RuntimeMetric(
        "process.memory.usage",
        Kind.UP_DOWN_COUNTER,
        "By",
        "The amount of physical memory in use (resident set size).",
        (),
        "/proc/self/statm: resident pages",
        _memory_usage,
        needs_proc=True,
    ),
    RuntimeMetric(
        "process.memory.virtual",
        Kind.UP_DOWN_COUNTER,
        "By",
        "The amount of committed virtual memory.",
        (),
        "/proc/self/statm: size in pages",
        _memory_virtual,
        needs_proc=True,
    ),
    RuntimeMetric(
        "process.thread.count",
        Kind.UP_DOWN_COUNTER,
        "{thread}",
        "Threads of the process, Python and native.",
        (),
        "/proc/self/stat: num_threads",
        _thread_count,
        needs_proc=True,
    ),
    RuntimeMetric(
        "process.unix.file_descriptor.count",
        Kind.UP_DOWN_COUNTER,
        "{file_descriptor}",
        "Number of file descriptors in use by the process.",
        (),
        "/proc/self/fd: entries",
        _file_descriptor_count,
        needs_proc=True,
    ),
    RuntimeMetric(
        "process.context_switches",
        Kind.COUNTER,
        "{context_switch}",
        "Number of times the process has been context switched, by type.",
        ("process.context_switch.type",),
        "getrusage(RUSAGE_SELF): ru_nvcsw, ru_nivcsw",
        _context_switches,
    ),
    RuntimeMetric(
        "cpython.gc.collections",
        Kind.COUNTER,
        "{collection}",
        "The number of times a generation was collected since interpreter start.",
        _GENERATION,
        "gc.get_stats(): collections",
        _gc("collections"),
    ),
    RuntimeMetric(
        "cpython.gc.collected_objects",
        Kind.COUNTER,
        "{object}",
        "The number of objects collected since interpreter start.",
        _GENERATION,
        "gc.get_stats(): collected",
        _gc("collected"),
    ),
    RuntimeMetric(
        "cpython.gc.uncollectable_objects",
        Kind.COUNTER,
        "{object}",
        "The number of unreachable objects found uncollectable since interpreter start.",
        _GENERATION,
        "gc.get_stats(): uncollectable",
        _gc("uncollectable"),
    ),
)
"""The runtime metrics :func:`tradetel.configure` registers by default, in documentation order."""


def _available(metric: RuntimeMetric) -> bool:
    if metric.needs_proc:
        return os.path.isdir(f"{_PROC}/fd")
    if metric.name.startswith("cpython.gc."):
        return hasattr(gc, "get_stats")
    try:
        import resource  # noqa: F401 - Unix only
    except ImportError:
        return not metric.source.startswith("getrusage")
    return True


def _callback(metric: RuntimeMetric, state: _State, health: Health | None) -> Callable[[CallbackOptions], Any]:
    def observe(options: CallbackOptions) -> list[Observation]:
        try:
            return [Observation(value, attributes) for value, attributes in metric.read(state)]
        except (OSError, ValueError, IndexError) as exc:
            # an unreadable value (EMFILE listing /proc/self/fd, an unexpected /proc format) is left out
            if health is not None:
                _unreadable(health, metric.name, exc)
            return []

    return observe


def _unreadable(health: Health, name: str, exc: Exception) -> None:
    detail = f"{type(exc).__name__}: {exc}"
    if health.strict:  # strict mode raises at the caller's own measurements; here the caller is a collection
        health.log_once(name, "unreadable", "tradetel could not read %s: %s", name, detail)
    else:
        health.drop(name, "unreadable", detail)


def register_runtime_metrics(meter: Meter, health: Health | None = None) -> tuple[str, ...]:
    """Register :data:`RUNTIME_METRICS` as observable instruments on ``meter``; return the names registered.

    ``configure()`` calls it (unless ``runtime_metrics`` is off) with the Telemetry's own health
    accounting, so unreadable values are counted in ``tradetel.measurements.dropped``.
    """
    create = {
        Kind.COUNTER: meter.create_observable_counter,
        Kind.UP_DOWN_COUNTER: meter.create_observable_up_down_counter,
        Kind.GAUGE: meter.create_observable_gauge,
    }
    state = _State()
    names = []
    for metric in RUNTIME_METRICS:
        if not _available(metric):
            continue
        create[metric.kind](
            metric.name, callbacks=[_callback(metric, state, health)], unit=metric.unit, description=metric.description
        )
        names.append(metric.name)
    return tuple(names)


# --- event-loop lag -------------------------------------------------------------------------------

EVENT_LOOP_LAG = "python.asyncio.event_loop.lag"
"""Name of the event-loop lag histogram (no semantic convention exists for it yet)."""

EVENT_LOOP_LAG_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
"""Bucket boundaries of the lag histogram, in seconds: sub-millisecond up to five seconds."""

_LAG_HISTOGRAMS: weakref.WeakKeyDictionary[Telemetry, Histogram] = weakref.WeakKeyDictionary()


def _lag_histogram(telemetry: Telemetry) -> Histogram:
    # No lock (one held by another thread at a fork would stay held in the child): two threads
    # starting their first watch at once both create it, and the SDK returns the same instrument.
    histogram = _LAG_HISTOGRAMS.get(telemetry)
    if histogram is None:
        histogram = telemetry.meter.create_histogram(
            EVENT_LOOP_LAG,
            unit="s",
            description="How late a timer callback scheduled on the asyncio event loop ran.",
            explicit_bucket_boundaries_advisory=list(EVENT_LOOP_LAG_BUCKETS),
        )
        _LAG_HISTOGRAMS[telemetry] = histogram
    return histogram


class EventLoopWatch:
    """A periodic timer on an asyncio loop that records how late it runs. Built by :func:`watch_event_loop`.

    Each tick is a plain ``loop.call_at`` callback (no task): it records
    ``loop.time() - deadline`` and schedules the next deadline ``interval``
    seconds after it ran. It stops with :meth:`stop`, when the Telemetry shuts
    down, or when the loop closes.

    Example::

        watch = watch_event_loop(tel, loop, interval=0.5)
        watch.stop()
    """

    __slots__ = ("_deadline", "_handle", "_histogram", "_loop", "_stopped", "_telemetry", "interval")

    def __init__(self, telemetry: Telemetry, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._telemetry = weakref.ref(telemetry)
        self._histogram = _lag_histogram(telemetry)
        self._loop = loop
        self.interval = interval
        self._handle: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._stopped = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def running(self) -> bool:
        return not self._stopped

    def _schedule(self) -> None:
        if self._stopped:
            return
        self._deadline = self._loop.time() + self.interval
        self._handle = self._loop.call_at(self._deadline, self._tick)

    def _tick(self) -> None:
        if self._stopped:
            return
        # asyncio may run a timer up to its clock resolution early: that is no lag, not a negative one
        lag = max(self._loop.time() - self._deadline, 0.0)
        telemetry = self._telemetry()
        if telemetry is None or telemetry.closed:
            self._stopped = True
            return
        self._histogram.record(lag)
        self._schedule()

    def stop(self) -> None:
        """Stop measuring; safe from any thread, and more than once."""
        self._stopped = True
        if _running_loop() is self._loop:
            self._cancel()
        elif not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._cancel)
            except RuntimeError:  # the loop closed in between
                pass

    def _cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def __repr__(self) -> str:
        return f"<EventLoopWatch interval={self.interval:g}s running={self.running}>"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def watch_event_loop(
    telemetry: Telemetry, loop: asyncio.AbstractEventLoop | None = None, *, interval: float = 0.5
) -> EventLoopWatch:
    """Measure the lag of an asyncio event loop into ``python.asyncio.event_loop.lag`` (seconds).

    Args:
        telemetry: the configured :class:`~tradetel.Telemetry` that owns the histogram.
        loop: the loop to watch; default the running loop (then call this from a coroutine).
            From another thread, pass the loop: the timer is started thread-safely.
        interval: seconds between two ticks, from 0.001 to 60. One tick costs one timer callback.

    Raises:
        ConfigurationError: ``interval`` is out of range, or no loop is given and none is running.

    Example::

        async def main() -> None:
            watch = watch_event_loop(tel, interval=0.25)
    """
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0.001 <= interval <= 60:
        raise ConfigurationError("watch_event_loop(interval=)", interval, "a number of seconds from 0.001 to 60")
    running = _running_loop()
    target = loop or running
    if target is None:
        raise ConfigurationError(
            "watch_event_loop(loop=)", None, "an event loop, or a call from a coroutine on the running loop"
        )
    watch = EventLoopWatch(telemetry, target, float(interval))
    if running is target:
        watch._schedule()
    else:
        target.call_soon_threadsafe(watch._schedule)
    return watch


def _markdown_table() -> str:
    """The metrics table of ``docs/runtime-metrics.md``, generated from :data:`RUNTIME_METRICS`."""
    from .exporters._naming import prometheus_name

    lines = [
        "| name | kind | unit | attributes | Prometheus | source |",
        "|---|---|---|---|---|---|",
    ]
    for metric in RUNTIME_METRICS:
        attributes = ", ".join(f"`{key}`" for key in metric.attributes)
        prometheus = prometheus_name(metric.name, metric.kind, metric.unit)
        lines.append(
            f"| `{metric.name}` | {metric.kind.value} | `{metric.unit}` | {attributes} | `{prometheus}` | "
            f"{metric.source} |"
        )
    lag = prometheus_name(EVENT_LOOP_LAG, Kind.HISTOGRAM, "s")
    lines.append(f"| `{EVENT_LOOP_LAG}` (opt-in) | histogram | `s` |  | `{lag}` | a timer on the loop |")
    return "\n".join(lines)
