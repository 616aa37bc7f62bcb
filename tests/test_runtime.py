"""Process and runtime metrics: semantic-convention names, values checked against independent sources, lag."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, MetricsData, NumberDataPoint

import tradetel
from tradetel import runtime
from tradetel.catalog import Kind
from tradetel.runtime import EVENT_LOOP_LAG, EVENT_LOOP_LAG_BUCKETS, RUNTIME_METRICS, watch_event_loop

LINUX = Path("/proc/self/fd").is_dir()


@pytest.fixture
def tel() -> Iterator[tradetel.Telemetry]:
    with tradetel.configure(exporters="none", env={}) as telemetry:
        yield telemetry


def points(data: MetricsData, name: str) -> list[Any]:
    return [
        point
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def values(data: MetricsData, name: str) -> dict[tuple[tuple[str, Any], ...], float]:
    found = {}
    for point in points(data, name):
        assert isinstance(point, NumberDataPoint)
        found[tuple(sorted(point.attributes.items()))] = point.value
    return found


def one(data: MetricsData, name: str, **attributes: Any) -> float:
    return values(data, name)[tuple(sorted(attributes.items()))]


# --- names ----------------------------------------------------------------------------------------


class _Recorder:
    """Stands in for a Meter only to read the kind and unit the semantic-conventions package passes it."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[Kind, str]] = {}

    def _record(self, kind: Kind) -> Any:
        def create(name: str, callbacks: Any = None, unit: str = "", description: str = "") -> None:
            self.calls[name] = (kind, unit)

        return create

    def __getattr__(self, method: str) -> Any:
        if "up_down_counter" in method:
            return self._record(Kind.UP_DOWN_COUNTER)
        if "counter" in method:
            return self._record(Kind.COUNTER)
        return self._record(Kind.GAUGE)


def test_names_kinds_units_and_attributes_follow_the_semantic_conventions() -> None:
    """Every runtime metric has the name, instrument kind, unit and attribute keys of the current semconv package."""
    from opentelemetry.semconv._incubating.attributes import cpu_attributes, cpython_attributes, process_attributes
    from opentelemetry.semconv._incubating.metrics import cpython_metrics, process_metrics

    recorder = _Recorder()
    for module in (process_metrics, cpython_metrics):
        for function in dir(module):
            if function.startswith("create_"):
                create = getattr(module, function)
                try:
                    create(recorder, callbacks=None)
                except TypeError:
                    create(recorder)
    keys = {
        cpu_attributes.CPU_MODE,
        process_attributes.PROCESS_CONTEXT_SWITCH_TYPE,
        cpython_attributes.CPYTHON_GC_GENERATION,
    }
    assert {m.name for m in RUNTIME_METRICS} >= {
        process_metrics.PROCESS_CPU_TIME,
        process_metrics.PROCESS_MEMORY_USAGE,
        process_metrics.PROCESS_UNIX_FILE_DESCRIPTOR_COUNT,
        cpython_metrics.CPYTHON_GC_COLLECTIONS,
    }
    for metric in RUNTIME_METRICS:
        assert recorder.calls[metric.name] == (metric.kind, metric.unit), metric.name
        assert set(metric.attributes) <= keys, metric.name


def test_prometheus_names_follow_the_compatibility_rules(tel: tradetel.Telemetry) -> None:
    """The Prometheus endpoint exposes process_cpu_time_seconds_total and friends, parsed by prometheus_client."""
    from prometheus_client.parser import text_string_to_metric_families

    from tradetel.exporters.prometheus import render

    families = {f.name: f for f in text_string_to_metric_families(render(tel.collect()).decode())}
    assert families["process_cpu_time_seconds"].type == "counter"
    modes = {s.labels["cpu_mode"] for s in families["process_cpu_time_seconds"].samples}
    assert modes == {"user", "system"}
    assert families["process_memory_usage_bytes"].type == "gauge"
    assert families["process_cpu_utilization_ratio"].type == "gauge"
    assert families["cpython_gc_collections"].type == "counter"
    generations = {s.labels["cpython_gc_generation"] for s in families["cpython_gc_collections"].samples}
    assert generations == {str(g) for g in range(len(gc.get_stats()))}
    if LINUX:
        assert families["process_unix_file_descriptors"].type == "gauge"
        assert families["process_threads"].samples[0].value >= threading.active_count()
    assert not [name for name, family in families.items() if name.endswith("_count") and family.type == "gauge"]


def test_a_gauge_is_named_after_what_it_counts_not_count() -> None:
    """`*.count` gauges lose the `_count` that Prometheus keeps for histograms; counters and histograms keep it."""
    from tradetel.catalog import prometheus_name

    assert prometheus_name("process.thread.count", Kind.UP_DOWN_COUNTER, "{thread}") == "process_threads"
    assert prometheus_name("bot.box.count", Kind.GAUGE, "{box}") == "bot_boxes"
    assert prometheus_name("bot.open_positions.count", Kind.GAUGE, "{position}") == "bot_open_positions"
    assert prometheus_name("bot.retry.count", Kind.COUNTER, "{retry}") == "bot_retry_count_total"
    assert prometheus_name("bot.batch.count", Kind.HISTOGRAM, "{order}") == "bot_batch_count"


def test_exposition_with_runtime_metrics_and_lag_passes_promtool(tel: tradetel.Telemetry, promtool: str) -> None:
    """The endpoint's text with every runtime metric and the lag histogram is clean for `promtool check metrics`."""
    from tradetel.exporters.prometheus import render

    async def tick() -> None:
        watch = watch_event_loop(tel, interval=0.001)
        await asyncio.sleep(0.02)
        watch.stop()

    asyncio.run(tick())
    text = render(tel.collect()).decode()
    assert 'python_asyncio_event_loop_lag_seconds_bucket{le="0.0001"}' in text
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and check.stdout == "" and check.stderr == "", check.stdout + check.stderr


# --- values against independent sources -----------------------------------------------------------

_SUBJECT = """
import json, os, sys, threading
import tradetel

stop = threading.Event()
threads = [threading.Thread(target=stop.wait) for _ in range(3)]
for thread in threads:
    thread.start()
files = [open(os.devnull) for _ in range(7)]
tel = tradetel.configure(exporters="none", env={})
data = tel.collect()
found = {}
for rm in data.resource_metrics:
    for sm in rm.scope_metrics:
        for metric in sm.metrics:
            for point in metric.data.data_points:
                key = metric.name + "|" + ",".join(f"{k}={v}" for k, v in sorted(point.attributes.items()))
                found[key] = getattr(point, "value", None)
print(json.dumps({"pid": os.getpid(), "python_threads": threading.active_count(), "values": found}), flush=True)
sys.stdin.readline()
stop.set()
"""


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_values_match_what_another_process_reads_in_proc() -> None:
    """RSS, virtual size, threads, descriptors, CPU time and context switches equal /proc/<pid> read from outside.

    The subject process reports its own metrics, then blocks; this process reads its /proc entries
    meanwhile, so the descriptor that lists /proc/self/fd in the subject is not counted.
    """
    with subprocess.Popen(
        [sys.executable, "-c", _SUBJECT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as subject:
        assert subject.stdout is not None and subject.stdin is not None
        report = json.loads(subject.stdout.readline())
        pid = report["pid"]
        time.sleep(0.2)  # let it reach the blocking read
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        tasks = os.listdir(f"/proc/{pid}/task")
        status = _status(pid)
        switches = {"voluntary": 0, "involuntary": 0}
        for task in tasks:
            task_status = _status_of_task(pid, task)
            switches["voluntary"] += int(task_status["voluntary_ctxt_switches"])
            switches["involuntary"] += int(task_status["nonvoluntary_ctxt_switches"])
        stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks = os.sysconf("SC_CLK_TCK")
        user, system = int(stat[11]) / ticks, int(stat[12]) / ticks
        subject.stdin.write("\n")
        subject.stdin.flush()
    got = report["values"]
    assert got["process.unix.file_descriptor.count|"] == fds
    assert got["process.thread.count|"] == len(tasks) >= report["python_threads"] == 4
    rss = int(status["VmRSS"].split()[0]) * 1024
    virtual = int(status["VmSize"].split()[0]) * 1024
    assert abs(got["process.memory.usage|"] - rss) <= 2 * 1024 * 1024, (got["process.memory.usage|"], rss)
    assert abs(got["process.memory.virtual|"] - virtual) <= 2 * 1024 * 1024, (got["process.memory.virtual|"], virtual)
    assert abs(got["process.cpu.time|cpu.mode=user"] - user) <= 0.05
    assert abs(got["process.cpu.time|cpu.mode=system"] - system) <= 0.05
    for kind, outside in switches.items():
        ours = got[f"process.context_switches|process.context_switch.type={kind}"]
        assert ours <= outside <= ours + 50, (kind, ours, outside)


def _status_of_task(pid: int, task: str) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


_FORKED = """
import json, os, resource, sys
import tradetel

def values(tel):
    found = {}
    for rm in tel.collect().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    key = metric.name + "|" + ",".join(f"{k}={v}" for k, v in sorted(point.attributes.items()))
                    found[key] = getattr(point, "value", None)
    return found

def burn(seconds):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    while resource.getrusage(resource.RUSAGE_SELF).ru_utime - start < seconds:
        pass

tel = tradetel.configure(exporters="none", env={})
burn(0.3)  # the parent's CPU time, which a child must not take for its own
parent = values(tel)
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    first = values(tel)
    burn(0.05)
    second = values(tel)
    tasks = len(os.listdir("/proc/self/task"))
    os.write(write, json.dumps({"first": first, "second": second, "tasks": tasks}).encode())
    os._exit(0)
os.close(write)
with os.fdopen(read) as pipe:
    child = json.loads(pipe.read())
os.waitpid(pid, 0)
print(json.dumps({"parent": parent, **child}))
"""


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_a_forked_child_reports_its_own_process() -> None:
    """After os.fork the child reports its own CPU time and threads, and no utilisation from the parent's times."""
    result = subprocess.run([sys.executable, "-c", _FORKED], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    user = "process.cpu.time|cpu.mode=user"
    utilization = "process.cpu.utilization|cpu.mode=user"
    assert report["parent"][user] >= 0.3 > report["first"][user]
    assert utilization not in report["first"]
    assert 0 < report["second"][utilization] <= 1
    assert report["second"]["process.thread.count|"] == report["tasks"] == 1


def test_gc_metrics_follow_collections_made_on_purpose(tel: tradetel.Telemetry) -> None:
    """Forced collections add exactly to cpython.gc.collections; collected objects grow by gc.collect()'s count."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        before = tel.collect()
        for _ in range(3):
            gc.collect(0)
        for _ in range(50):
            a: list[Any] = []
            b = [a]
            a.append(b)
        del a, b
        found = gc.collect(2)
        after = tel.collect()
    finally:
        if enabled:
            gc.enable()
    assert one(after, "cpython.gc.collections", **{"cpython.gc.generation": 0}) == (
        one(before, "cpython.gc.collections", **{"cpython.gc.generation": 0}) + 3
    )
    assert one(after, "cpython.gc.collections", **{"cpython.gc.generation": 2}) == (
        one(before, "cpython.gc.collections", **{"cpython.gc.generation": 2}) + 1
    )
    collected = one(after, "cpython.gc.collected_objects", **{"cpython.gc.generation": 2}) - one(
        before, "cpython.gc.collected_objects", **{"cpython.gc.generation": 2}
    )
    assert found >= 100 and collected == found
    stats = gc.get_stats()
    for generation, generation_stats in enumerate(stats):
        key = {"cpython.gc.generation": generation}
        assert one(after, "cpython.gc.uncollectable_objects", **key) == generation_stats["uncollectable"]


def test_cpu_utilization_is_the_share_of_available_cpus_between_collections(tel: tradetel.Telemetry) -> None:
    """process.cpu.utilization is the CPU time between two collections over elapsed time and available CPUs."""
    import resource

    tel.collect()
    start, usage = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    while resource.getrusage(resource.RUSAGE_SELF).ru_utime - usage.ru_utime < 0.05:
        pass
    data = tel.collect()
    elapsed = time.monotonic() - start
    used = resource.getrusage(resource.RUSAGE_SELF).ru_utime - usage.ru_utime
    cpus = len(os.sched_getaffinity(0))
    utilization = one(data, "process.cpu.utilization", **{"cpu.mode": "user"})
    # the collection window starts before `start` and ends before `used` is read: bracket it
    assert 0 < utilization <= 1
    assert utilization * cpus * elapsed <= used + 0.02
    assert utilization >= 0.5 * used / (cpus * (elapsed + 1.0))


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_an_unreadable_value_is_dropped_counted_and_logged_once(
    tel: tradetel.Telemetry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When /proc cannot be read, the memory series are left out (not zero), counted as dropped, logged once."""
    monkeypatch.setattr(runtime, "_PROC", "/nonexistent/proc/self")
    tel.collect()
    data = tel.collect()
    assert points(data, "process.memory.usage") == []
    assert points(data, "process.unix.file_descriptor.count") == []
    dropped = values(data, "tradetel.measurements.dropped")
    assert dropped[(("instrument", "process.memory.usage"), ("reason", "unreadable"))] == 2
    assert points(data, "process.cpu.time")  # the rest is still reported
    assert sum("process.memory.usage" in r.getMessage() for r in caplog.records) == 1


def test_runtime_metrics_can_be_switched_off() -> None:
    """runtime_metrics=False or TRADETEL_RUNTIME_METRICS=false registers none; a bad value names the variable."""
    with tradetel.configure(exporters="none", runtime_metrics=False, env={}) as off:
        assert points(off.collect(), "process.cpu.time") == []
    with tradetel.configure(exporters="none", env={"TRADETEL_RUNTIME_METRICS": "false"}) as off:
        assert points(off.collect(), "cpython.gc.collections") == []
    with pytest.raises(tradetel.ConfigurationError) as info:
        tradetel.configure(exporters="none", env={"TRADETEL_RUNTIME_METRICS": "sometimes"})
    assert "TRADETEL_RUNTIME_METRICS='sometimes'" in str(info.value) and "true or false" in str(info.value)


# --- event-loop lag -------------------------------------------------------------------------------


def _lag(tel: tradetel.Telemetry) -> HistogramDataPoint:
    (point,) = points(tel.collect(), EVENT_LOOP_LAG)
    assert isinstance(point, HistogramDataPoint)
    return point


def test_a_blocking_call_shows_up_as_lag(tel: tradetel.Telemetry) -> None:
    """A 200 ms blocking call on the loop is caught: one observation above 100 ms, in sub-millisecond buckets."""

    async def bot() -> None:
        watch = watch_event_loop(tel, interval=0.005)
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # a blocking call on the loop, as a synchronous HTTP client would make
        await asyncio.sleep(0.05)
        watch.stop()

    started = time.monotonic()
    asyncio.run(bot())
    elapsed = time.monotonic() - started
    point = _lag(tel)
    assert tuple(point.explicit_bounds) == EVENT_LOOP_LAG_BUCKETS and EVENT_LOOP_LAG_BUCKETS[0] < 0.001
    above = sum(
        count for bound, count in zip((0.0, *point.explicit_bounds), point.bucket_counts, strict=True) if bound >= 0.1
    )
    assert above >= 1
    assert point.max >= 0.19
    assert point.count >= 3
    assert 0.19 <= point.sum <= elapsed  # lags never overlap: together they fit in the run


def test_watch_from_another_thread_and_stop() -> None:
    """A loop running in a thread is watched through loop=; stop() from this thread ends the ticks."""
    with tradetel.configure(exporters="none", runtime_metrics=False, env={}) as tel:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever)
        thread.start()
        try:
            watch = watch_event_loop(tel, loop, interval=0.002)
            deadline = time.monotonic() + 10
            while not points(tel.collect(), EVENT_LOOP_LAG) and time.monotonic() < deadline:
                time.sleep(0.01)
            watch.stop()
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0.01), loop).result(timeout=10)
            count = _lag(tel).count
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0.05), loop).result(timeout=10)
            assert _lag(tel).count == count >= 1
            assert not watch.running
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()


def test_watch_stops_when_the_telemetry_shuts_down() -> None:
    """After shutdown the next tick ends the watch instead of recording into a closed pipeline."""
    tel = tradetel.configure(exporters="none", runtime_metrics=False, env={})

    async def bot() -> bool:
        watch = watch_event_loop(tel, interval=0.002)
        await asyncio.sleep(0.02)
        tel.shutdown()
        await asyncio.sleep(0.02)
        return watch.running

    assert asyncio.run(bot()) is False


def test_watch_arguments_are_checked(tel: tradetel.Telemetry) -> None:
    """An interval out of range, or no loop outside a coroutine, raises ConfigurationError naming the argument."""
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(tradetel.ConfigurationError, match=r"interval.*0\.001 to 60"):
            watch_event_loop(tel, loop, interval=0)
        with pytest.raises(tradetel.ConfigurationError, match="loop="):
            watch_event_loop(tel)
    finally:
        loop.close()


def test_capture_leaves_runtime_metrics_out_unless_asked() -> None:
    """tradetel.testing.capture() is deterministic (no runtime metrics) unless runtime_metrics=True is given."""
    from tradetel.testing import capture

    with capture() as cap:
        assert points(cap.telemetry.collect(), "process.cpu.time") == []
        assert render_twice_equal(cap.telemetry)
    with capture(runtime_metrics=True) as cap:
        assert points(cap.telemetry.collect(), "process.cpu.time")


def render_twice_equal(tel: tradetel.Telemetry) -> bool:
    from tradetel.exporters.prometheus import render

    return render(tel.collect()) == render(tel.collect())
