"""CPU quotas for benchmark server processes, through Linux control groups.

:class:`CpuQuota` puts each process it is given in a cgroup of its own with
a CPU quota of ``cores`` (``0.1`` = a tenth of one core), as if each ran on
a small machine of its own.  It uses the cgroup v1 ``cpu`` controller
(``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) or, where that is absent,
cgroup v2 (``cpu.max``).  Its groups are uniquely named and live under one
parent group ``kombu-bench-<random>``; :meth:`CpuQuota.close` moves any
process still in them back where it came from and removes them.  Creating
one raises :class:`QuotaUnavailable` (saying what is missing) when neither
is usable, e.g. without root.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field

__all__ = ["CpuQuota", "QuotaUnavailable"]

PERIOD_US = 100_000
MOUNTS = "/proc/self/mounts"


class QuotaUnavailable(RuntimeError):
    """No writable cgroup CPU controller here (v1 ``cpu`` or v2 ``cpu.max``)."""


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _find_controller(mounts: str = MOUNTS) -> tuple[int, str]:
    """(version, mount point) of a cgroup hierarchy with the cpu controller."""
    v2 = None
    try:
        lines = _read(mounts).splitlines()
    except OSError as exc:
        raise QuotaUnavailable(f"cannot read {mounts}: {exc}") from exc
    for line in lines:
        fields = line.split()
        if len(fields) < 4:
            continue
        point, fstype, options = fields[1], fields[2], fields[3].split(",")
        if fstype == "cgroup" and "cpu" in options:
            return 1, point
        if fstype == "cgroup2" and v2 is None:
            try:
                if "cpu" in _read(os.path.join(point, "cgroup.controllers")).split():
                    v2 = point
            except OSError:
                pass
    if v2 is not None:
        return 2, v2
    raise QuotaUnavailable(
        "no cgroup CPU controller is mounted: neither a cgroup v1 hierarchy with `cpu` "
        "nor a cgroup v2 hierarchy offering `cpu` in cgroup.controllers (see /proc/self/mounts)")


def _own_cgroup(pid: int, version: int) -> str:
    """The cgroup of ``pid`` in the hierarchy we use, relative to its mount ("/" if unknown)."""
    try:
        lines = _read(f"/proc/{pid}/cgroup").splitlines()
    except OSError:
        return "/"
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if (version == 1 and "cpu" in controllers.split(",")) or (version == 2 and controllers == ""
                                                                  and line.startswith("0:")):
            return path or "/"
    return "/"


@dataclass
class CpuQuota:
    """One cgroup with a CPU quota of ``cores`` per process :meth:`limit` is given."""

    cores: float
    version: int = 0
    mount: str = ""
    parent: str = ""
    groups: dict[int, str] = field(default_factory=dict)   # pid -> group directory
    origins: dict[int, str] = field(default_factory=dict)  # pid -> its cgroup before
    _enabled_root_cpu: bool = False

    def __post_init__(self) -> None:
        if not 0.01 <= self.cores <= (os.cpu_count() or 1):
            raise ValueError(f"the CPU quota must be between 0.01 and {os.cpu_count()} cores, "
                             f"not {self.cores}")
        self.version, self.mount = _find_controller()
        parent = os.path.join(self.mount, f"kombu-bench-{uuid.uuid4().hex[:10]}")
        try:
            if self.version == 2:
                root_control = os.path.join(self.mount, "cgroup.subtree_control")
                if "cpu" not in _read(root_control).split():
                    _write(root_control, "+cpu")
                    self._enabled_root_cpu = True
            os.mkdir(parent)
            self.parent = parent
            if self.version == 2:
                _write(os.path.join(parent, "cgroup.subtree_control"), "+cpu")
        except OSError as exc:
            self.close()
            raise QuotaUnavailable(
                f"cannot create a CPU-limited cgroup under {self.mount} (cgroup v{self.version}): "
                f"{exc}; this needs root (or a delegated, writable cgroup) and the cpu "
                "controller") from exc

    def limit(self, pid: int, name: str) -> str:
        """Move process ``pid`` into a new group ``name`` limited to ``cores``; its path."""
        group = os.path.join(self.parent, name)
        quota = max(1000, round(self.cores * PERIOD_US))
        try:
            os.mkdir(group)
            self.groups[pid] = group
            if self.version == 1:
                _write(os.path.join(group, "cpu.cfs_period_us"), str(PERIOD_US))
                _write(os.path.join(group, "cpu.cfs_quota_us"), str(quota))
            else:
                _write(os.path.join(group, "cpu.max"), f"{quota} {PERIOD_US}")
            self.origins[pid] = _own_cgroup(pid, self.version)
            _write(os.path.join(group, "cgroup.procs"), str(pid))
        except OSError as exc:
            raise QuotaUnavailable(f"cannot limit process {pid} in {group}: {exc}") from exc
        return group

    def throttled(self, pid: int) -> float:
        """Seconds the group of ``pid`` spent throttled (waiting for its quota) so far."""
        try:
            stat = dict(line.split() for line in
                        _read(os.path.join(self.groups[pid], "cpu.stat")).splitlines())
        except (OSError, KeyError, ValueError):
            return 0.0
        if "throttled_time" in stat:             # v1: nanoseconds
            return int(stat["throttled_time"]) / 1e9
        return int(stat.get("throttled_usec", 0)) / 1e6

    def close(self, timeout: float = 10.0) -> list[str]:
        """Move every process still in the groups back, remove the groups; what was left.

        Returns the directories that could not be removed (with the reason),
        so the caller can tell the user to remove them (``rmdir``).
        """
        left: list[str] = []
        for pid, group in list(self.groups.items()):
            for member in self._members(group):
                back = os.path.join(self.mount, self.origins.get(member, "/").lstrip("/"))
                for target in (back, self.mount):
                    try:
                        _write(os.path.join(target, "cgroup.procs"), str(member))
                        break
                    except OSError:
                        continue
            if not self._rmdir(group, timeout):
                left.append(group)
            del self.groups[pid]
        if self.parent and not self._rmdir(self.parent, timeout):
            left.append(self.parent)
        self.parent = ""
        if self._enabled_root_cpu:
            try:
                _write(os.path.join(self.mount, "cgroup.subtree_control"), "-cpu")
            except OSError:
                pass
            self._enabled_root_cpu = False
        return left

    @staticmethod
    def _members(group: str) -> list[int]:
        try:
            return [int(p) for p in _read(os.path.join(group, "cgroup.procs")).split()]
        except OSError:
            return []

    @staticmethod
    def _rmdir(path: str, timeout: float) -> bool:
        """rmdir, retried while the kernel still counts an exiting process (EBUSY)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.rmdir(path)
                return True
            except FileNotFoundError:
                return True
            except OSError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
