"""What a forked child must renew, and the one set of fork hooks that renews it.

``os.register_at_fork`` cannot unregister a hook, so registering one per
:class:`~tradetel.Telemetry` would keep a hook (and its closure) for every
``configure()`` the process ever made. tradetel registers once, when this
module is imported; the hooks dispatch to what is alive at the fork:

- module-level locks registered with :func:`renew_after_fork` (one line in
  the module that owns the lock), made fresh and released in the child;
- live objects registered with :func:`track` (held weakly), whose
  ``_before_fork()`` runs in the parent and ``_after_fork_in_child()`` in
  the child.

SIGTERM is blocked in the forking thread from just before the fork until
the child has renewed everything (and, in the parent, until the fork
returns), so that a signal handler can never run in a child whose state is
half reset. A SIGTERM that arrives meanwhile stays pending and is handled
right after.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import weakref
from typing import Any, Protocol

from ._sdk import renew_lock

__all__ = ["renew_after_fork", "track", "untrack"]


class _ForkAware(Protocol):
    def _before_fork(self) -> None: ...

    def _after_fork_in_child(self) -> None: ...


_LOCKS: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_LIVE: weakref.WeakSet[_ForkAware] = weakref.WeakSet()
_SIGTERM = {signal.SIGTERM}
_blocked_before = threading.local()  # per forking thread: was SIGTERM already blocked before the fork?


def renew_after_fork(owner: Any, attribute: str) -> None:
    """Renew ``owner.<attribute>`` (a lock) in every forked child; ``owner`` (or the module it names) is held weakly.

    Example::

        _STREAK_LOCK = threading.Lock()
        renew_after_fork(__name__, "_STREAK_LOCK")
    """
    if isinstance(owner, str):
        owner = sys.modules[owner]
    _LOCKS.setdefault(owner, set()).add(attribute)


def track(obj: _ForkAware) -> None:
    """Call ``obj``'s fork methods at every fork while it is alive (held weakly)."""
    _LIVE.add(obj)


def untrack(obj: _ForkAware) -> None:
    _LIVE.discard(obj)


def _block_sigterm() -> None:
    if hasattr(signal, "pthread_sigmask"):
        _blocked_before.value = signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, _SIGTERM)


def _restore_sigterm() -> None:
    if getattr(_blocked_before, "value", True) is False:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGTERM)
    _blocked_before.value = True


def _before() -> None:
    _block_sigterm()
    for obj in list(_LIVE):
        try:
            obj._before_fork()
        except Exception:
            _report(obj, "before a fork")


def _after_in_parent() -> None:
    _restore_sigterm()


def _after_in_child() -> None:
    try:
        for owner, attributes in list(_LOCKS.items()):
            for attribute in attributes:
                renew_lock(owner, attribute)
        for obj in list(_LIVE):
            try:
                obj._after_fork_in_child()
            except Exception:
                _report(obj, "in a forked child")
    finally:
        _restore_sigterm()


def _report(obj: object, where: str) -> None:
    # A fork hook's exception would only be printed by the interpreter; say which object failed.
    logging.getLogger("tradetel").error("tradetel: the fork hook of %r failed %s", obj, where, exc_info=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child)
