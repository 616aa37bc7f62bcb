"""tradetel.gunicorn's hooks, called as gunicorn's arbiter calls them, and the identity they give a worker.

The server and worker objects are stand-ins with the attributes the hooks read (``WORKERS``, ``pid``,
``ppid``, ``cfg``); ``tests/integration/test_gunicorn.py`` runs the same hooks under real gunicorn.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

import tradetel
from tradetel import _identity, _sigterm
from tradetel.config import load_settings
from tradetel.gunicorn import post_fork, post_worker_init, pre_fork, worker_exit, worker_index
from tradetel.telemetry import Telemetry

MASTER = 4242
# A closed port: the final flush gives up at once instead of retrying.
OTLP = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}


@pytest.fixture(autouse=True)
def _not_a_worker() -> Iterator[None]:
    """Each test starts and ends outside a worker."""
    _identity.clear()
    yield
    _identity.clear()


class Server:
    """The part of gunicorn's Arbiter the hooks read: its live workers by pid, and its settings."""

    def __init__(self) -> None:
        self.WORKERS: dict[int, Any] = {}
        self.cfg = SimpleNamespace(pre_fork=pre_fork)
        self._next_pid = 100

    def spawn(self) -> Any:
        """What Arbiter.spawn_worker does around the fork, in the master: pre_fork, then register the pid."""
        worker = SimpleNamespace(ppid=MASTER, pid=None)
        pre_fork(self, worker)
        self._next_pid += 1
        worker.pid = self._next_pid
        self.WORKERS[worker.pid] = worker
        return worker

    def reap(self, worker: Any) -> None:
        del self.WORKERS[worker.pid]


def become(worker: Any) -> None:
    """Run post_fork as the worker would, in this process."""
    worker.pid = os.getpid()
    post_fork(Server(), worker)


def configure(**env: str) -> tradetel.Telemetry:
    return tradetel.configure(exporters="otlp", runtime_metrics=False, shutdown_timeout=1, env={**OTLP, **env})


def exported_resource(tel: tradetel.Telemetry) -> dict[str, Any]:
    return dict(tel.collect().resource_metrics[0].resource.attributes)


def test_pre_fork_gives_each_worker_the_lowest_index_no_live_worker_holds() -> None:
    """Four workers get 0-3; replacements take over the indexes of the workers that exited, lowest first."""
    server = Server()
    workers = [server.spawn() for _ in range(4)]
    assert [w.tradetel_worker_index for w in workers] == [0, 1, 2, 3]
    server.reap(workers[2])
    server.reap(workers[0])
    assert server.spawn().tradetel_worker_index == 0
    assert server.spawn().tradetel_worker_index == 2
    assert server.spawn().tradetel_worker_index == 4  # a fifth live worker (TTIN) gets a new index


def test_worker_configures_under_its_slot_id_with_delta_otlp() -> None:
    """A worker's Telemetry is <hostname>-<master pid>-w<index>, carries the index, and pushes OTLP deltas."""
    worker = Server().spawn()
    worker.tradetel_worker_index = 2
    become(worker)
    assert worker_index() == 2
    with configure() as tel:
        resource = exported_resource(tel)
        assert resource["service.instance.id"] == f"{socket.gethostname()}-{MASTER}-w2"
        assert resource["tradetel.worker.index"] == "2"
        assert tel.settings.otlp.temporality == "delta"
        assert "temporality='delta'" in repr(tel._push._exporters[0])


@pytest.mark.parametrize(
    "env",
    [{"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=pod-7f9c"}, {"TRADETEL_INSTANCE_ID": "pod-7f9c"}],
    ids=["resource-attribute", "tradetel-variable"],
)
def test_a_configured_instance_id_names_the_server(env: dict[str, str]) -> None:
    """With service.instance.id configured (the pod name, say), worker 1 is <configured>-w1."""
    become(SimpleNamespace(ppid=MASTER, tradetel_worker_index=1))
    with configure(**env) as tel:
        assert exported_resource(tel)["service.instance.id"] == "pod-7f9c-w1"


def test_explicit_cumulative_otlp_gets_an_id_per_process() -> None:
    """A worker told to push cumulative series would reset its slot's counters: it gets <slot>-<pid> instead."""
    become(SimpleNamespace(ppid=MASTER, tradetel_worker_index=0))
    with configure(OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="cumulative") as tel:
        assert tel.settings.otlp.temporality == "cumulative"
        expected = f"{socket.gethostname()}-{MASTER}-w0-{os.getpid()}"
        assert exported_resource(tel)["service.instance.id"] == expected


def test_without_otlp_the_slot_id_is_kept() -> None:
    """Without OTLP (a Prometheus port per worker, DogStatsD) no cumulative series is pushed: the slot id stays."""
    become(SimpleNamespace(ppid=MASTER, tradetel_worker_index=3))
    with tradetel.configure(exporters="none", env={}) as tel:
        assert tel.resource.attributes["service.instance.id"] == f"{socket.gethostname()}-{MASTER}-w3"


def test_a_telemetry_configured_in_the_master_is_renamed_in_the_worker() -> None:
    """preload_app: the Telemetry inherited from the master exports under the worker's id, as OTLP deltas."""
    with configure(TRADETEL_INSTANCE_ID="api-1") as tel:
        assert tel.settings.otlp.temporality == "cumulative"
        become(SimpleNamespace(ppid=MASTER, tradetel_worker_index=1))
        resource = exported_resource(tel)
        assert resource["service.instance.id"] == "api-1-w1"
        assert resource["tradetel.worker.index"] == "1"
        assert tel.settings.otlp.temporality == "delta"
        assert "temporality='delta'" in repr(tel._push._exporters[0])


def test_post_fork_without_pre_fork_is_a_configuration_error() -> None:
    """A worker without an index (pre_fork not installed) fails to boot, naming the missing hook."""
    server = Server()
    server.cfg.pre_fork = lambda server, worker: None
    with pytest.raises(tradetel.ConfigurationError, match=r"pre_fork .*tradetel\.gunicorn\.pre_fork"):
        post_fork(server, SimpleNamespace(ppid=MASTER, pid=os.getpid()))
    assert worker_index() is None


def test_worker_exit_flushes_in_the_worker_and_does_nothing_in_the_master() -> None:
    """gunicorn also calls worker_exit in the master for a worker already gone: only the worker shuts down."""
    with configure() as tel:
        worker_exit(Server(), SimpleNamespace(pid=os.getpid() + 1))
        assert not tel.closed
        worker_exit(Server(), SimpleNamespace(pid=os.getpid()))
        assert tel.closed


def test_worker_exit_waits_for_a_flush_already_running_in_another_thread() -> None:
    """A uvicorn worker leaves while its SIGTERM flush runs in a thread: worker_exit returns only after that flush."""
    events: list[str] = []
    release = threading.Event()

    class Blocking:
        name = "blocking"

        def export(self, data: MetricsData, timeout: float) -> None:
            if not release.is_set():  # the final flush: held until the test lets it go
                release.wait(30)
                events.append("final flush delivered")

        def shutdown(self, timeout: float) -> None:
            pass

    settings = load_settings({"exporters": "none", "runtime_metrics": False, "export_interval": 3600}, env={})
    tel = Telemetry(settings, exporters=[Blocking()])
    tel.orders.filled.add(1, exchange="binance")
    flushing = threading.Thread(target=tel.shutdown, kwargs={"timeout": 30})
    flushing.start()
    deadline = time.monotonic() + 30
    while not tel.closed and time.monotonic() < deadline:
        time.sleep(0.001)

    def leave() -> None:
        worker_exit(Server(), SimpleNamespace(pid=os.getpid()))
        events.append("worker_exit returned")

    leaving = threading.Thread(target=leave)
    leaving.start()
    leaving.join(0.5)  # long enough for a worker_exit that does not wait to have returned already
    release.set()
    leaving.join(30)
    flushing.join(30)
    assert events == ["final flush delivered", "worker_exit returned"]


def test_post_worker_init_flushes_on_sigterm_only_where_sigterm_has_its_default_action() -> None:
    """UvicornWorker resets SIGTERM to its default action: the hook installs the flush; a handler of its own stays."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with configure() as tel:
            post_worker_init(SimpleNamespace())
            handler = signal.getsignal(signal.SIGTERM)
            assert isinstance(handler, _sigterm.SigtermHandler)
            assert tel in handler.telemetries
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # shutdown put the default back

        def own(signum: int, frame: object) -> None:
            pass

        signal.signal(signal.SIGTERM, own)
        with configure():
            post_worker_init(SimpleNamespace())
            assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_process_forked_by_a_worker_is_not_that_worker() -> None:
    """A child of the worker (a multiprocessing pool in a request handler) gets no worker index of its own."""
    become(SimpleNamespace(ppid=MASTER, tradetel_worker_index=1))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, repr(worker_index()).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        assert pipe.read() == "None"
    assert worker_index() == 1
