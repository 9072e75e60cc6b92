"""Extra redis-server processes on free loopback ports, for restarts and faults."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from helpers.sockets import free_port

__all__ = ["RedisServer", "free_port"]

HOST = "127.0.0.1"




class RedisServer:
    """An extra redis-server on a loopback port, stopped by :meth:`stop`."""

    def __init__(self, *args: str, port: int | None = None, tls: bool = False,
                 config: str | None = None) -> None:
        self.port = port or free_port()
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        port_args = ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
        head = [config] if config else []
        # Its own working directory: a replica writes the master's snapshot there.
        self.dir = tempfile.mkdtemp(prefix="kombu-redis-test-")
        self.proc = subprocess.Popen(
            [binary, *head, *port_args, "--bind", HOST, "--save", "", "--appendonly", "no",
             "--dir", self.dir, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise RuntimeError(f"redis-server exited: {out[-2000:]}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not listen on {HOST}:{self.port} within 10s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)
