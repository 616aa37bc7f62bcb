"""The identity of a worker process of a pre-fork server: a worker index, and the instance id made from it.

A pre-fork server (gunicorn) runs N workers and replaces one whenever it
exits (``max_requests``, a crash, a timeout). Each worker must export under an
id no live sibling uses, or the collector would mix their series; and the set
of ids must stay bounded while workers come and go, or every replacement
would add series until they expire.

The index of a worker is the lowest one no live sibling holds (its *slot*):
a replacement takes over the slot of the worker it replaces. Its instance id
is ``<base>-w<index>``, where the base names the server: the
``service.instance.id`` configured for it (pod name, host and unit), else
``<hostname>-<master pid>``.

Reusing an id is exact only when every monotonic series leaves the process as
deltas (OTLP ``delta`` temporality): the collector's ``deltatocumulative``
processor then adds the replacement's deltas to the running totals of the
slot, which never go down. A cumulative series under a reused id would start
again at zero: a counter reset, which loses what the old worker counted
after the last scrape. So a worker's OTLP temporality defaults to ``delta``,
and a worker that is told to push cumulative (or ``lowmemory``) series gets
an id of its own, ``<base>-w<index>-<pid>``: exact, at the cost of new series
per worker process (they expire at the collector).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from . import _fork

if TYPE_CHECKING:
    from .config import Settings
    from .telemetry import Telemetry

__all__ = ["WORKER_INDEX_ATTRIBUTE", "WorkerIdentity", "clear", "current", "enter_worker", "worker_settings"]

WORKER_INDEX_ATTRIBUTE = "tradetel.worker.index"
"""Resource attribute holding the worker index (a string, as every resource attribute tradetel reads)."""


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    """This process is worker ``index`` of a server whose default instance id base is ``base``."""

    index: int
    base: str

    def instance_id(self, configured: str | None, *, reusable: bool) -> str:
        """``<configured or base>-w<index>``, with ``-<pid>`` when a reused id would not be exact."""
        slot = f"{configured or self.base}-w{self.index}"
        return slot if reusable else f"{slot}-{os.getpid()}"


_current: WorkerIdentity | None = None
_current_pid = 0


def current() -> WorkerIdentity | None:
    """The identity :func:`enter_worker` gave this process, or ``None`` outside a server's worker."""
    if _current is not None and _current_pid != os.getpid():
        return None  # a process forked by the worker is not the worker
    return _current


def enter_worker(index: int, base: str) -> WorkerIdentity:
    """Make this process worker ``index``: Telemetry alive now is renamed, and later ``configure()`` calls use it."""
    global _current, _current_pid
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"a worker index is an int >= 0, not {index!r}")
    _current, _current_pid = WorkerIdentity(index, base), os.getpid()
    from .telemetry import Telemetry

    for obj in list(_fork._LIVE):
        if isinstance(obj, Telemetry) and not obj.closed:
            _rename(obj)
    return _current


def clear() -> None:
    """Forget the worker identity (tests)."""
    global _current
    _current = None


def _reusable(settings: Settings) -> bool:
    """Whether every monotonic series of ``settings``' exports survives a reused id exactly."""
    return "otlp" not in settings.exporters or settings.otlp.temporality == "delta"


def worker_settings(settings: Settings) -> Settings:
    """``settings`` as this worker uses them: its instance id, its index attribute, delta OTLP unless told otherwise."""
    identity = current()
    if identity is None:
        return settings
    otlp = settings.otlp
    if "otlp.temporality" not in settings.origins:
        otlp = replace(otlp, temporality="delta")
    resolved = replace(settings, otlp=otlp)
    attributes: Mapping[str, str] = MappingProxyType(
        {**settings.resource_attributes, WORKER_INDEX_ATTRIBUTE: str(identity.index)}
    )
    return replace(
        resolved,
        instance_id=identity.instance_id(settings.instance_id, reusable=_reusable(resolved)),
        resource_attributes=attributes,
    )


def _rename(telemetry: Telemetry) -> None:
    """Give a Telemetry configured before the fork (``preload_app``) this worker's identity."""
    configured = vars(telemetry).setdefault("_settings_before_worker", telemetry.settings)
    settings = worker_settings(configured)
    telemetry.settings = settings
    for exporter in telemetry._push._exporters:
        use = getattr(exporter, "use_temporality", None)
        if use is not None:
            use(settings.otlp.temporality)
    telemetry._merge_resource(
        {
            "service.instance.id": str(settings.instance_id),
            WORKER_INDEX_ATTRIBUTE: settings.resource_attributes[WORKER_INDEX_ATTRIBUTE],
        },
    )
