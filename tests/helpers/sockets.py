"""Count this process's sockets (Linux ``/proc``), to show pools leak none."""

from __future__ import annotations

import gc
import os
import socket

__all__ = ["baseline_sockets", "established_to", "free_port", "open_sockets"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` with nothing listening right now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (e.g. the listdir's own fd)
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def established_to(port: int) -> int:
    """ESTABLISHED TCP connections of this process to ``port`` on any address."""
    mine = _socket_inodes()
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)  # the header
                for line in lines:
                    fields = line.split()
                    remote, state, inode = fields[2], fields[3], fields[9]
                    if (state == "01" and int(remote.rsplit(":", 1)[1], 16) == port
                            and inode in mine):
                        count += 1
        except FileNotFoundError:  # no IPv6
            continue
    return count


def open_sockets() -> int:
    """Every socket descriptor of this process, in any state (catches dead ones too)."""
    return len(_socket_inodes())


def baseline_sockets() -> int:
    """:func:`open_sockets` once earlier tests' garbage is collected, so that a
    socket they left to the garbage collector does not close during a test."""
    gc.collect()
    return open_sockets()
