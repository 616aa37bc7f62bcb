"""gunicorn server hooks: each worker gets a stable, distinct identity, and flushes when it exits.

Use the module as the configuration file, or import its hooks into yours::

    gunicorn -c python:tradetel.gunicorn --workers 4 --max-requests 1000 app:app

    # gunicorn.conf.py
    from tradetel.gunicorn import post_fork, post_worker_init, pre_fork, worker_exit

What the hooks do (``docs/scale-out.md`` has the whole story):

- :func:`pre_fork` (in the master) gives each new worker the lowest worker
  index that no live worker holds, so a worker that replaces one that exited
  (``max_requests``, a crash, a timeout) takes over its index;
- :func:`post_fork` (in the worker) makes the worker's ``service.instance.id``
  ``<base>-w<index>`` and adds the resource attribute ``tradetel.worker.index``:
  for a Telemetry configured in the master (``preload_app``) now, for one the
  worker configures later when it configures; it also makes OTLP send
  ``delta`` temporality unless configured otherwise, so that the collector adds
  the replacement's counts to the same totals (a reused id with cumulative
  series would be a counter reset);
- :func:`post_worker_init` (in the worker, once the app is loaded) makes a
  worker whose SIGTERM has the default action (``uvicorn_worker.UvicornWorker``)
  flush before SIGTERM ends it;
- :func:`worker_exit` (in the worker, as it leaves: ``max_requests``, SIGTERM
  and the graceful timeout, SIGQUIT, SIGABRT after a timeout) flushes and shuts
  down every Telemetry of the worker.

gunicorn calls these hooks for every worker class; ``tests/integration/test_gunicorn.py``
runs the sync worker and ``uvicorn_worker.UvicornWorker``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from typing import Any

from . import _fork, _identity, _sigterm
from .errors import ConfigurationError

__all__ = ["post_fork", "post_worker_init", "pre_fork", "worker_exit", "worker_index"]

_logger = logging.getLogger("tradetel")
_INDEX = "tradetel_worker_index"  # attribute of gunicorn's Worker object, set in the master


def pre_fork(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master before a worker is forked: give it the lowest index no live worker holds."""
    taken = {getattr(sibling, _INDEX, None) for sibling in server.WORKERS.values()}
    index = 0
    while index in taken:
        index += 1
    setattr(worker, _INDEX, index)


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn hook, in the new worker: take the identity ``<base>-w<index>`` (see the module's docstring).

    Raises:
        ConfigurationError: :func:`pre_fork` is not installed as well, so the worker has no index.
    """
    index = getattr(worker, _INDEX, None)
    if index is None:
        hook = getattr(getattr(server, "cfg", None), "pre_fork", None)
        raise ConfigurationError(
            "pre_fork (gunicorn setting)",
            f"{getattr(hook, '__module__', '?')}.{getattr(hook, '__qualname__', hook)}",
            "tradetel.gunicorn.pre_fork, or a pre_fork hook that calls it, next to tradetel.gunicorn.post_fork",
        )
    _identity.enter_worker(index, f"{socket.gethostname()}-{worker.ppid}")


def post_worker_init(worker: Any) -> None:
    """gunicorn hook, in the worker once the app is loaded: flush on SIGTERM where nothing else would.

    ``uvicorn_worker.UvicornWorker`` gives SIGTERM its default action back, and uvicorn, after its
    graceful shutdown, raises the signal again so that the worker dies of it: neither atexit nor
    :func:`worker_exit` would run. Where SIGTERM has the default action, every Telemetry alive now
    (configured at the app's import, or in the master with ``preload_app``) is flushed first, within
    ``shutdown_timeout``, and the worker then exits with status 143. Workers that handle SIGTERM
    themselves (gunicorn's own worker classes) are left as they are: they leave through
    :func:`worker_exit`.
    """
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return
    from .telemetry import Telemetry

    for obj in list(_fork._LIVE):
        if isinstance(obj, Telemetry) and not obj.closed and obj._sigterm is None:
            obj._sigterm = _sigterm.install(obj, required=False)  # shutdown() uninstalls it


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the worker as it exits: flush and shut down every Telemetry of the process.

    A Telemetry that another thread is shutting down already (the SIGTERM flush of a uvicorn worker,
    which runs while the worker leaves) is waited for, within its ``shutdown_timeout``: the process
    must not end in the middle of that flush. gunicorn also calls this hook in the master for a worker
    that was already gone when the master signalled it; there it does nothing.
    """
    if getattr(worker, "pid", None) != os.getpid():
        return
    from .telemetry import Telemetry

    for obj in list(_fork._LIVE):
        if isinstance(obj, Telemetry):
            try:
                obj.shutdown()
            except Exception:
                _logger.warning("tradetel: the flush of %r at worker exit failed", obj, exc_info=True)


def worker_index() -> int | None:
    """This worker's index (0 … workers-1 while no worker is added), or ``None`` outside a gunicorn worker.

    Example (a Prometheus port per worker, for the pull alternative)::

        tel = tradetel.configure(exporters="prometheus", prometheus_port=9464 + (worker_index() or 0))
    """
    identity = _identity.current()
    return identity.index if identity is not None else None
