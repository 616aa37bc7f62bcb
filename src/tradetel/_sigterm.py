"""SIGTERM: flush within ``shutdown_timeout``, then exit with status 143.

The default action of SIGTERM ends a process at once, the last interval
included. tradetel's handler (``handle_sigterm=True``, and in
multiprocessing children, see :func:`install_in_multiprocessing_child`)
does what an orchestrator expects instead: the data recorded so far is
flushed, within the deadline, and the process exits with status 143
(128 + SIGTERM), whatever its other threads are doing.

Why a thread: a Python signal handler runs in the main thread between two
bytecodes, possibly in the middle of a recording call that holds a series'
lock, which a flush from inside the handler would wait for forever. Raising
``SystemExit`` there instead can stop a histogram update half done, and an
interpreter that then waits for non-daemon threads never exits (Python 3.13
waits for them even when ``SystemExit`` interrupted a ``join()``). So the
handler only starts a thread and returns; the main thread carries on (and releases what it held), the
thread shuts every registered :class:`~tradetel.Telemetry` down and then
ends the process with ``os._exit(143)``. Like the default action, that skips
the application's own atexit handlers and ``finally`` blocks; an
application that needs them installs its own SIGTERM handler before
``configure()``: tradetel then calls that one instead and leaves the exit
to it (atexit flushes).
"""

from __future__ import annotations

import _thread
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

from . import _fork
from .errors import ConfigurationError

__all__ = ["EXIT_STATUS", "install", "install_in_multiprocessing_child", "uninstall"]

_logger = logging.getLogger("tradetel")
EXIT_STATUS = 128 + signal.SIGTERM

_Handler = Callable[[int, FrameType | None], Any] | int | None


class _Flushable(Protocol):
    @property
    def shutdown_timeout(self) -> float: ...

    def shutdown(self, timeout: float | None = None) -> None: ...


class SigtermHandler:
    """The installed handler: the previous Python handler if there was one, else flush and exit 143."""

    def __init__(self, previous: _Handler) -> None:
        self.previous = previous
        self.telemetries: weakref.WeakSet[_Flushable] = weakref.WeakSet()
        self._once = threading.Lock()  # taken, never released, by the first SIGTERM
        self._wakeup: tuple[int, int] | None = None
        _fork.track(self)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if callable(self.previous):
            self.previous(signum, frame)
            return
        self._begin()

    def _begin(self) -> None:
        if not self._once.acquire(blocking=False):
            return  # a second SIGTERM while flushing: the flush already has its deadline
        # A bare thread: threading.Thread.start() takes locks the interrupted main thread may hold.
        # If the program ends on its own meanwhile, its atexit shutdown waits for this same flush.
        _thread.start_new_thread(self._flush_and_exit, ())

    def watch(self) -> None:
        """Also learn of SIGTERM in a thread of its own, through the signal wakeup fd.

        A Python handler runs only when the main thread executes bytecode. A signal that arrives
        just before the main thread blocks for good (a multiprocessing worker waiting on the task
        queue's lock, which ``Pool.terminate()`` holds) would never be handled: the process would
        hang and ``terminate()`` with it. The interpreter's C-level handler writes every caught
        signal's number to the wakeup fd at once, whatever the main thread is doing. Nothing is
        done if something else (an asyncio loop's signal handling) already uses the wakeup fd.
        """
        if self._wakeup is not None or not _main_thread() or callable(self.previous):
            return
        read, write = os.pipe()
        os.set_blocking(write, False)
        try:
            old = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        except (ValueError, OSError):
            old = -2
        if old != -1:
            if old != -2:
                signal.set_wakeup_fd(old)
            os.close(read)
            os.close(write)
            return
        self._wakeup = (read, write)
        threading.Thread(target=self._watch, args=(read,), name="tradetel-sigterm", daemon=True).start()

    def _watch(self, fd: int) -> None:
        while True:
            try:
                received = os.read(fd, 64)
            except OSError:
                received = b""
            if not received:
                os.close(fd)
                return
            if signal.SIGTERM in received:
                self._begin()

    def _flush_and_exit(self) -> None:
        try:
            telemetries = list(self.telemetries)
            deadline = time.monotonic() + max((t.shutdown_timeout for t in telemetries), default=0.0)
            for telemetry in telemetries:
                try:
                    telemetry.shutdown(timeout=max(deadline - time.monotonic(), 0.0))
                except Exception:
                    _logger.warning("tradetel: the flush on SIGTERM failed", exc_info=True)
            for stream in (sys.stdout, sys.stderr):
                try:
                    if stream is not None:
                        stream.flush()
                except Exception:  # a closed or broken stream must not keep the process alive
                    pass
        finally:
            os._exit(EXIT_STATUS)

    def unwatch(self) -> None:
        """Give the wakeup fd back (main thread); the watcher thread ends when its pipe closes."""
        if self._wakeup is None:
            return
        _, write = self._wakeup
        self._wakeup = None
        current = signal.set_wakeup_fd(-1)
        if current not in (write, -1):
            signal.set_wakeup_fd(current)  # someone else's since: leave it
        os.close(write)  # the watcher reads the end of the pipe, closes it and ends

    def _before_fork(self) -> None:
        pass

    def _after_fork_in_child(self) -> None:
        """A child forked while the parent flushed has not received SIGTERM itself; the watcher thread is gone."""
        self._once = threading.Lock()
        if self._wakeup is not None:
            try:
                signal.set_wakeup_fd(-1)  # the pipe is shared with the parent, whose watcher would read it
            except ValueError:
                pass
            for fd in self._wakeup:  # no watcher thread here to close the read end
                os.close(fd)
            self._wakeup = None
            if self.telemetries:
                self.watch()  # the child's own pipe and watcher (pool workers block on a lock for good)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install(telemetry: _Flushable, *, required: bool) -> SigtermHandler | None:
    """Flush ``telemetry`` on SIGTERM; returns the handler, or ``None`` when SIGTERM is left as it is.

    ``required`` (the ``handle_sigterm`` opt-in) makes a call outside the main thread a
    :class:`ConfigurationError`; otherwise (multiprocessing children) it installs nothing there.
    A process that ignores SIGTERM keeps ignoring it.
    """
    if not _main_thread():
        if not required:
            return None
        raise ConfigurationError(
            "handle_sigterm/TRADETEL_HANDLE_SIGTERM",
            True,
            "configure() called in the main thread (only it can install signal handlers)",
        )
    current = signal.getsignal(signal.SIGTERM)
    if isinstance(current, SigtermHandler):
        handler = current
    elif current == signal.SIG_IGN:
        if required:
            _logger.info("tradetel: SIGTERM is ignored by this process; handle_sigterm leaves it so")
        return None
    elif not required and current != signal.SIG_DFL:
        return None  # the application's own handler decides; atexit or the finalizers flush
    else:
        handler = SigtermHandler(current)
        signal.signal(signal.SIGTERM, handler)
    handler.telemetries.add(telemetry)
    handler.watch()
    return handler


def install_in_multiprocessing_child(telemetry: _Flushable) -> SigtermHandler | None:
    """In a multiprocessing child whose SIGTERM has the default action: flush on SIGTERM, then exit.

    ``Pool.__exit__`` and ``Pool.terminate()`` end the workers with SIGTERM and then wait for them
    to exit, so a worker that flushes first loses nothing. A child that handles SIGTERM itself
    (or ignores it) is left alone.
    """
    return install(telemetry, required=False)


def uninstall(handler: SigtermHandler, telemetry: _Flushable) -> None:
    """Forget ``telemetry``; once no Telemetry is left, put the previous handler back if ours is still installed."""
    handler.telemetries.discard(telemetry)
    if handler.telemetries or not _main_thread():
        return
    previous = handler.previous if handler.previous is not None else signal.SIG_DFL
    installed = signal.getsignal(signal.SIGTERM) is handler
    handler.unwatch()
    if installed:
        signal.signal(signal.SIGTERM, previous)
