"""Process models: SIGTERM and multiprocessing pools deliver everything recorded, to a real OTLP receiver.

Each scenario runs a bot in a fresh interpreter (this file is also the bot: ``python test_process_models.py
<scenario> <endpoint> ...``) that pushes OTLP/HTTP once an hour, so only the final flushes deliver anything.
The receiver is an HTTP server in the test process that decodes every request with the OTLP protobuf
definitions, as a collector does, and keeps each process's last cumulative value per series.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

FILL = {"exchange": "binance", "side": "buy"}
N = 1234
POOL_TASKS = 8000
POOL_RUNS = {"fork": 8, "fork-handle-sigterm": 4, "forkserver": 2, "spawn": 2}


# --- the receiver ---------------------------------------------------------------------------------


class Receiver:
    """An OTLP/HTTP metrics endpoint on 127.0.0.1: the last value of each (instance, metric, attributes)."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

        self._pb = metrics_service_pb2
        self._lock = threading.Lock()
        self.latest: dict[tuple[str, str, tuple[tuple[str, str], ...]], tuple[int, float]] = {}
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver._receive(body)
                answer = receiver._pb.ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _receive(self, body: bytes) -> None:
        request = self._pb.ExportMetricsServiceRequest.FromString(body)
        with self._lock:
            self.requests += 1
            for resource_metrics in request.resource_metrics:
                resource = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
                instance = resource["service.instance.id"]
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        points = metric.sum.data_points if metric.HasField("sum") else ()
                        for point in points:
                            labels = tuple(sorted((a.key, a.value.string_value) for a in point.attributes))
                            key = (instance, metric.name, labels)
                            value = point.as_int if point.HasField("as_int") else point.as_double
                            previous = self.latest.get(key)
                            if previous is None or previous[0] <= point.time_unix_nano:
                                self.latest[key] = (point.time_unix_nano, value)

    def total(self, metric: str, **labels: str) -> float:
        """The sum over processes of the last cumulative value of the series with these labels."""
        wanted = set(labels.items())
        with self._lock:
            return sum(v for (_, name, got), (_, v) in self.latest.items() if name == metric and wanted <= set(got))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real OTLP/HTTP receiver on 127.0.0.1, stopped at teardown."""
    started = Receiver()
    yield started
    started.close()


def _env(endpoint: str, **more: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "TRADETEL_EXPORT_INTERVAL": "3600",
        "TRADETEL_SHUTDOWN_TIMEOUT": "5",
        **more,
    }


# --- the bots -------------------------------------------------------------------------------------


def sigterm_bot(endpoint: str, shape: str) -> None:
    """Record N fills with ``handle_sigterm``, then trade until SIGTERM in the loop shape ``shape``."""
    import tradetel

    tel = tradetel.configure(exporters="otlp", handle_sigterm=True, env=_env(endpoint))
    for _ in range(N):
        tel.orders.filled.add(1, symbol="SIGTERM", **FILL)

    def trade() -> None:
        while True:  # a trading loop waiting for its next tick
            time.sleep(0.05)

    async def trade_async() -> None:
        while True:
            await asyncio.sleep(0.05)

    print("ready", flush=True)
    if shape == "main":
        trade()
    elif shape == "thread":
        worker = threading.Thread(target=trade)  # not a daemon: the interpreter would wait for it
        worker.start()
        worker.join()
    else:
        asyncio.run(trade_async())


_pool_tel: Any = None


def _configure_in_worker(endpoint: str) -> None:
    """The Pool initializer of the spawn and forkserver start methods: each worker configures its own."""
    global _pool_tel
    import tradetel

    _pool_tel = tradetel.configure(exporters="otlp", env=_env(endpoint))


def _task(run: int) -> int:
    _pool_tel.orders.filled.add(1, symbol=f"RUN{run}", **FILL)
    return os.getpid()


def pool_bot(endpoint: str, method: str) -> None:
    """Run ``POOL_RUNS[method]`` pools as context managers, each mapping POOL_TASKS tasks that record one fill."""
    global _pool_tel
    import tradetel

    context = multiprocessing.get_context(method.split("-")[0])
    if method.startswith("fork-"):  # the parent opted in: the workers inherit its handler
        _pool_tel = tradetel.configure(exporters="otlp", handle_sigterm=True, env=_env(endpoint))
        options: dict[str, Any] = {}
    elif method == "fork":
        _pool_tel = tradetel.configure(exporters="otlp", env=_env(endpoint))  # inherited by the workers
        options = {}
    else:
        options = {"initializer": _configure_in_worker, "initargs": (endpoint,)}
    for run in range(POOL_RUNS[method]):
        with context.Pool(4, **options) as pool:
            pids = set(pool.map(_task, [run] * POOL_TASKS, chunksize=50))
        print(f"run {run}: {len(pids)} workers", flush=True)
    if _pool_tel is not None:
        _pool_tel.shutdown()


# --- the tests ------------------------------------------------------------------------------------


def _bot(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("shape", ["main", "thread", "asyncio"])
def test_sigterm_flushes_and_exits_143(shape: str, receiver: Receiver) -> None:
    """With handle_sigterm, a real SIGTERM flushes all N fills and ends the bot with status 143, whatever its loop.

    ``thread`` is a trading loop in a non-daemon thread that the main thread joins (which Python 3.13 no
    longer lets a signal handler's SystemExit interrupt); ``asyncio`` runs the loop in ``asyncio.run``.
    """
    with _bot("sigterm", receiver.endpoint, shape) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n", process.stderr.read() if process.stderr else ""
            process.send_signal(signal.SIGTERM)
            code = process.wait(20)
        finally:
            process.kill()
        errors = process.stderr.read() if process.stderr else ""
    assert code == 128 + signal.SIGTERM, errors
    assert receiver.total("trading.orders.filled", symbol="SIGTERM") == N, errors


@pytest.mark.parametrize("method", list(POOL_RUNS))
def test_pool_as_context_manager_delivers_every_measurement(method: str, receiver: Receiver) -> None:
    """``with Pool() as pool: pool.map(...)`` (whose exit SIGTERMs the workers) delivers all of every run's fills.

    With fork, the workers inherit the parent's Telemetry (and, with ``fork-handle-sigterm``, its SIGTERM
    handler); with forkserver and spawn, a Pool initializer configures one in each worker. Every run's total
    at the receiver is exactly POOL_TASKS.
    """
    result = subprocess.run(
        [sys.executable, __file__, "pool", receiver.endpoint, method], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    for run in range(POOL_RUNS[method]):
        assert receiver.total("trading.orders.filled", symbol=f"RUN{run}") == POOL_TASKS, (run, result.stderr)


def fork_state() -> None:
    """Fork from a configured process; print both signal masks and the child's instance ids (its own, exported)."""
    import tradetel

    tel = tradetel.configure(exporters="none", handle_sigterm=True)
    parent_id = tel.resource.attributes["service.instance.id"]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        tel.orders.filled.add(1, symbol="CHILD", **FILL)
        exported = tel.collect().resource_metrics[0].resource.attributes["service.instance.id"]
        mask = repr(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        os.write(write, f"{mask} {tel.resource.attributes['service.instance.id']} {exported}".encode())
        os._exit(0)
    os.waitpid(pid, 0)
    print(os.read(read, 1000).decode(), repr(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, []))), parent_id)
    tel.shutdown()


def test_fork_unblocks_sigterm_and_exports_under_the_childs_own_instance() -> None:
    """After a fork, SIGTERM is deliverable in both processes; the child exports under the new id it reports.

    SIGTERM is blocked only while the child resets its state. The SDK's own fork hook, which runs after
    tradetel's, does not replace the child's ``service.instance.id``.
    """
    result = subprocess.run(
        [sys.executable, __file__, "fork", "-", "-"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    child_mask, child_id, exported_id, parent_mask, parent_id = result.stdout.split()
    assert child_mask == parent_mask == "[]"
    assert child_id == exported_id != parent_id


if __name__ == "__main__":
    if sys.argv[1] == "fork":
        fork_state()
    elif sys.argv[1] == "sigterm":
        sigterm_bot(sys.argv[2], sys.argv[3])
    else:
        pool_bot(sys.argv[2], sys.argv[3])
