"""Runtime metrics and event-loop lag through the real backends: the Collector over OTLP, DogStatsD datagrams."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tradetel
from tradetel.runtime import watch_event_loop

pytestmark = pytest.mark.integration


@pytest.fixture
def no_automatic_gc() -> Iterator[None]:
    """GC counts stay still while the test compares them across processes (collections happen only on demand)."""
    enabled = gc.isenabled()
    gc.disable()
    gc.collect()
    yield
    if enabled:
        gc.enable()


def _lag_once(tel: tradetel.Telemetry) -> None:
    async def bot() -> None:
        watch = watch_event_loop(tel, interval=0.005)
        await asyncio.sleep(0.03)
        time.sleep(0.15)
        await asyncio.sleep(0.03)
        watch.stop()

    asyncio.run(bot())


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_collector_receives_runtime_metrics_under_semconv_names(
    protocol: str,
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    wait_until: Callable[..., Any],
    no_automatic_gc: None,
) -> None:
    """Over OTLP the Collector gets process.*, cpython.gc.* and the lag histogram; GC counts are exact."""
    env = collector_env()
    otel = collector("gateway.yaml", env, wait_ports=[int(env["OTLP_GRPC_PORT"]), int(env["OTLP_HTTP_PORT"])])
    endpoint = otel.otlp_endpoint(protocol)
    settings = {"OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    with tradetel.configure(service_name="runtime-bot", exporters="otlp", export_interval=3600, env=settings) as tel:
        _lag_once(tel)
        gc.collect(2)
        collections = gc.get_stats()[2]["collections"]
        tel.force_flush()
        wait_until(
            lambda: otel.total("cpython_gc_collections_total", cpython_gc_generation="2") > 0,
            "the collector to expose the GC counter",
            30,
        )
    assert otel.total("cpython_gc_collections_total", cpython_gc_generation="2") == collections
    assert {labels["cpu_mode"] for labels, _ in otel.samples("process_cpu_time_seconds_total")} == {"user", "system"}
    assert otel.total("process_memory_usage_bytes") > 1_000_000
    assert otel.total("process_thread_count") >= 2  # the main thread and the export thread
    assert otel.total("process_unix_file_descriptor_count") >= 3
    assert len(otel.samples("python_asyncio_event_loop_lag_seconds_bucket", le="0.0001")) == 1
    slow = otel.total("python_asyncio_event_loop_lag_seconds_count") - otel.total(
        "python_asyncio_event_loop_lag_seconds_bucket", le="0.1"
    )
    assert slow >= 1  # the 150 ms block


def test_dogstatsd_datagrams_carry_runtime_metrics(no_automatic_gc: None) -> None:
    """DogStatsD: counters as deltas (|c) with dotted names and tags, memory as a gauge (|g), lag as distribution."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as agent:
        agent.bind(("127.0.0.1", 0))
        agent.settimeout(5)
        env = {"DD_DOGSTATSD_URL": f"udp://127.0.0.1:{agent.getsockname()[1]}"}
        with tradetel.configure(service_name="dsd-bot", exporters="dogstatsd", export_interval=3600, env=env) as tel:
            _lag_once(tel)
            tel.force_flush()
            first = _drain(agent)
            for _ in range(3):
                gc.collect(2)
            tel.force_flush()
            second = _drain(agent)
    assert _value(first, "cpython.gc.collections", "|c", "cpython.gc.generation:2") >= 1
    assert _value(second, "cpython.gc.collections", "|c", "cpython.gc.generation:2") == 3
    assert _value(first, "process.memory.usage", "|g") > 1_000_000
    assert _value(first, "process.cpu.time", "|c", "cpu.mode:user") > 0
    lags = [line for line in first if line.startswith("python.asyncio.event_loop.lag")]
    assert lags, first


def _drain(sock: socket.socket) -> list[str]:
    lines: list[str] = []
    sock.settimeout(2)
    while True:
        try:
            lines += sock.recv(65535).decode().splitlines()
        except TimeoutError:
            return lines
        sock.settimeout(0.3)


def _value(lines: list[str], name: str, kind: str, tag: str = "") -> float:
    for line in lines:
        metric, _, rest = line.partition(":")
        if metric == name and kind + "|" in rest + "|" and (not tag or tag in rest.split("#", 1)[-1].split(",")):
            return float(rest.split("|", 1)[0])
    raise AssertionError(f"no {name}{kind} {tag} in {lines}")
