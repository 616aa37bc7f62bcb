"""Container origin detection for DogStatsD: the ``|c:`` field, read from cgroups as the ``datadog`` client does.

In the host's cgroup namespace the container id is the last path element of a line of
``/proc/self/cgroup`` that looks like a container id (``ci-<id>``). In a private cgroup namespace
(Docker's default with cgroup v2) the path there is ``/``, so the inode of the process's cgroup
directory stands for the container instead (``in-<inode>``), which the DataDog Agent resolves.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["CgroupPaths", "container_id"]

_UUID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"
_CONTAINER = r"[0-9a-f]{64}"
_TASK = r"[0-9a-f]{32}-\d+"
_LINE = re.compile(r"^(\d+):([^:]*):(.+)$")
_ID = re.compile(rf"(?:.+)?({_UUID}|{_CONTAINER}|{_TASK})(?:\.scope)?$")
_HOST_NAMESPACE_INODE = 0xEFFFFFFB
_V1_CONTROLLER = "memory"
_V2_CONTROLLER = ""


@dataclass(frozen=True, slots=True)
class CgroupPaths:
    """Where the cgroup information is read (tests point these at files of their own)."""

    cgroup: str = "/proc/self/cgroup"
    mount: str = "/sys/fs/cgroup"
    namespace: str = "/proc/self/ns/cgroup"


def container_id(paths: CgroupPaths = CgroupPaths()) -> str | None:
    """The ``|c:`` value for this process (``ci-<id>`` or ``in-<inode>``), or ``None`` outside a container.

    Never raises: a system without these files (not Linux) has no container id.
    """
    try:
        if _in_host_namespace(paths):
            return _from_cgroup_file(paths)
        return _from_inode(paths)
    except (OSError, ValueError):
        return None


def _in_host_namespace(paths: CgroupPaths) -> bool:
    try:
        return os.stat(paths.namespace).st_ino == _HOST_NAMESPACE_INODE
    except OSError:
        return False


def _from_cgroup_file(paths: CgroupPaths) -> str | None:
    with open(paths.cgroup, encoding="utf-8") as lines:
        for line in lines:
            match = _LINE.match(line.strip())
            if match is None:
                continue
            found = _ID.match(match.group(3).split("/")[-1])
            if found is not None:
                return "ci-" + found.group(1)
    return None


def _from_inode(paths: CgroupPaths) -> str | None:
    controllers: dict[str, str] = {}
    with open(paths.cgroup, encoding="utf-8") as lines:
        for line in lines:
            tokens = line.strip().split(":")
            if len(tokens) == 3 and tokens[1] in (_V1_CONTROLLER, _V2_CONTROLLER):
                controllers[tokens[1]] = tokens[2]
    for controller in (_V1_CONTROLLER, _V2_CONTROLLER):
        if controller in controllers:
            node = controllers[controller]
            inode = os.stat(os.path.join(paths.mount, controller, node if node != "/" else "")).st_ino
            if inode > 2:  # 0 is no inode, 1 a bad-block inode, 2 the root of a file system
                return f"in-{inode}"
    return None
