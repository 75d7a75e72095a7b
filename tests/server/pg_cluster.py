"""A throwaway PostgreSQL cluster for fault tests: ``initdb`` in a temporary directory, on a free loopback port.

Fault tests stop and start servers they made themselves, never the machine's
shared ones. ``initdb`` refuses to run as root, so as root the cluster belongs
to the ``postgres`` system user (``runuser``). Every wait is bounded.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PgCluster", "free_port"]


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no initdb under /usr/lib/postgresql/*/bin (install postgresql: bin/ensure-services)")
    return Path(found[-1]).parent


class PgCluster:
    """A PostgreSQL cluster of our own: ``with PgCluster() as cluster: … cluster.stop() … cluster.start()``."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="clientstate-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(["initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"], 120)
        self.running = False

    @property
    def url(self) -> str:
        """The libpq URL of the cluster's ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: list[str], timeout: float) -> None:
        argv = [str(self.bin / command[0]), *command[1:]]
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def start(self) -> None:
        """Start the server and wait (at most 60 s) until it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start"], 90)
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: ends every session, checkpoints; ``immediate``: like a crash)."""
        self._run(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"], 90)
        self.running = False

    def wait_down(self, timeout: float = 10.0) -> None:
        """Wait until the port refuses connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                return
            time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL on port {self.port} still answers")

    def close(self) -> None:
        """Stop the server if it runs and delete the cluster."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
