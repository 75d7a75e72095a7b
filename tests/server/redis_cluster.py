"""Throw-away Redis servers for the tests: one ``redis-server``, or a three-master Redis Cluster, on loopback.

Every server runs in its own temporary directory on free loopback ports and
dies with the test process (``PR_SET_PDEATHSIG``), so a crashed test run
leaves nothing behind; the machine's own Redis (127.0.0.1:6379) is never
touched. Used by the ``redis-cluster`` store kit (:mod:`tests.server.kits`)
and the fault tests (:mod:`tests.server.test_redis_faults`).

* :class:`RedisServer` — one server: :meth:`~RedisServer.start`,
  :meth:`~RedisServer.kill` (SIGKILL or SIGTERM), :meth:`~RedisServer.restart`
  on the same port and directory (with ``persistent=True`` it runs with
  ``--appendonly yes --appendfsync always``, so every acknowledged write
  survives a kill).
* :class:`LocalCluster` — three masters, no replicas, every slot assigned
  (``redis-cli --cluster create``), ``cluster-require-full-coverage no`` so the
  surviving masters keep serving their slots while one is down.
* :func:`shared_cluster` — one cluster for the whole test run, started on first
  use and stopped when the process exits (or by the session-scoped ``cluster``
  fixture of ``test_redis.py``, whichever comes first).
* :class:`Monitor` — every command one server executes (a raw ``MONITOR``
  connection), scripts' own commands included: for the tests that no ``KEYS``
  or ``SCAN`` is ever sent and that every script touches its one key.

Run as a script (``python -m tests.server.redis_cluster``) to start a cluster
and print its nodes until Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NamedTuple

__all__ = ["LocalCluster", "Monitor", "RedisServer", "Seen", "free_port", "redis_cli", "shared_cluster"]

HOST: Final = "127.0.0.1"
#: How long a server or a cluster may take to come up, seconds.
START_DEADLINE: Final = 30.0
_PR_SET_PDEATHSIG: Final = 1


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _answers(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis server answers PING on ``port`` (a raw RESP exchange, no client library)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as connection:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_cli(*args: str, timeout: float = 30.0) -> str:
    """Run ``redis-cli`` with ``args``; returns its standard output.

    Raises:
        RuntimeError: redis-cli failed or did not finish within ``timeout`` seconds.
    """
    done = subprocess.run(
        ["redis-cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"redis-cli {' '.join(args)} failed: {done.stdout} {done.stderr}")
    return done.stdout


class RedisServer:
    """One ``redis-server`` on ``127.0.0.1:port`` with its files in ``directory``.

    Args:
        directory: where its configuration, log and data files go (created if missing).
        port: the port (default: a free one).
        persistent: append-only file with ``appendfsync always`` (acknowledged
            writes survive a SIGKILL); else no persistence at all.
        cluster: run as a Redis Cluster node (``cluster-enabled yes``, the bus on
            a second free port, ``cluster-require-full-coverage no``).
    """

    def __init__(
        self, directory: Path, port: int | None = None, *, persistent: bool = False, cluster: bool = False
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.persistent = persistent
        self.cluster = cluster
        self.bus_port = free_port() if cluster else 0
        self.process: subprocess.Popen[bytes] | None = None
        # Ports we chose may be taken by someone else between free_port() and the server's bind (other test
        # runs share the machine): until the first start succeeds, such a start is retried on fresh ports.
        self._movable = port is None

    @property
    def address(self) -> str:
        """``127.0.0.1:port``."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:port/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def arguments(self) -> list[str]:
        """The command line of the server."""
        args = [
            "redis-server", "--port", str(self.port), "--bind", HOST, "--dir", str(self.directory),
            "--daemonize", "no", "--save", "", "--logfile", str(self.directory / "redis.log"),
            "--protected-mode", "yes",
        ]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always", "--appendfilename", "appendonly.aof"]
        else:
            args += ["--appendonly", "no"]
        if self.cluster:
            args += [
                "--cluster-enabled", "yes", "--cluster-config-file", str(self.directory / "nodes.conf"),
                "--cluster-port", str(self.bus_port), "--cluster-node-timeout", "2000",
                "--cluster-require-full-coverage", "no",
            ]
        return args

    def start(self) -> RedisServer:
        """Start the server and wait (at most :data:`START_DEADLINE` s) until it answers PING.

        Raises:
            RuntimeError: it exited or did not answer in time (the message quotes its log).
        """
        if shutil.which("redis-server") is None:  # installs it (never a skip: a missing server fails the test)
            subprocess.run(["bin/ensure-services"], cwd=Path(__file__).parents[2], check=True, timeout=600)
        deadline = time.monotonic() + START_DEADLINE
        for attempt in range(5):
            log_start = len(self.log())
            self.process = subprocess.Popen(
                self.arguments(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent
            )
            while not _answers(self.port):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log()
                    self.kill()
                    if self._movable and attempt < 4 and "Address already in use" in log[log_start:]:
                        break  # a port we picked was taken meanwhile: pick others
                    raise RuntimeError(f"redis-server on {self.address} did not start: {log[-2000:]}")
                time.sleep(0.02)
            else:
                self._movable = False
                return self
            self.port = free_port()
            self.bus_port = free_port() if self.cluster else 0
        raise AssertionError("unreachable: the last attempt raises")

    def log(self) -> str:
        """The server's log so far."""
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop the server with ``sig`` (SIGKILL: no goodbye; SIGTERM: a clean shutdown) and wait for it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def destroy(self) -> None:
        """Stop the server (SIGKILL) and delete its directory."""
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self) -> RedisServer:
        """Start the server again on the same port, with the same directory (and data, if persistent)."""
        self.kill()
        return self.start()

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None


class LocalCluster:
    """Three Redis Cluster masters (no replicas) on free loopback ports, every slot assigned.

    Args:
        persistent: run the masters with ``appendonly yes`` and
            ``appendfsync always`` (for fault tests that restart a master).
    """

    def __init__(self, *, persistent: bool = False) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="clientstate-redis-cluster-"))
        self.nodes = [
            RedisServer(self.directory / f"node{n}", persistent=persistent, cluster=True) for n in range(3)
        ]

    @property
    def url(self) -> str:
        """``redis+cluster://`` URL of the first node (any node is enough to find the others)."""
        return f"redis+cluster://{self.nodes[0].address}"

    @property
    def startup(self) -> list[tuple[str, int]]:
        """Every node as (host, port)."""
        return [(HOST, node.port) for node in self.nodes]

    def start(self) -> LocalCluster:
        """Start the masters, assign the 16384 slots, and wait until every node reports ``cluster_state:ok``.

        Raises:
            RuntimeError: a node did not start, or the cluster was not ok within :data:`START_DEADLINE` s.
        """
        try:
            for node in self.nodes:
                node.start()
            redis_cli(
                "--cluster", "create", *(node.address for node in self.nodes), "--cluster-replicas", "0",
                "--cluster-yes",
            )
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self, nodes: Sequence[RedisServer] | None = None, deadline: float = START_DEADLINE) -> float:
        """Wait until ``nodes`` (default: all) report ``cluster_state:ok`` and 16384 slots ok; returns the wait, s.

        Raises:
            RuntimeError: not ok within ``deadline`` seconds.
        """
        began = time.monotonic()
        pending = list(self.nodes if nodes is None else nodes)
        while pending:
            node = pending[0]
            try:
                info = redis_cli("-p", str(node.port), "cluster", "info", timeout=5)
            except (RuntimeError, subprocess.TimeoutExpired):
                info = ""
            if "cluster_state:ok" in info and "cluster_slots_ok:16384" in info:
                pending.pop(0)
                continue
            if time.monotonic() - began > deadline:
                raise RuntimeError(f"Redis Cluster node {node.address} not ok after {deadline} s: {info!r}")
            time.sleep(0.05)
        return time.monotonic() - began

    def node_at(self, port: int) -> RedisServer:
        """The node listening on ``port``.

        Raises:
            KeyError: no node of this cluster has that port.
        """
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def stop(self) -> None:
        """Stop every master and delete the cluster's files."""
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


_MONITOR_LINE: Final = re.compile(rb"^\+(\d+\.\d+) \[(\d+) ([^\]]+)\] (.*)$")
_MONITOR_ARG: Final = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_ESCAPES: Final = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b", b'"': b'"', b"\\": b"\\"}


class Seen(NamedTuple):
    """One command a server executed, as ``MONITOR`` reported it."""

    client: str  # "127.0.0.1:port" for a connection, "lua" for a command a script ran
    args: tuple[bytes, ...]

    @property
    def name(self) -> str:
        """The command's name, upper case."""
        return self.args[0].decode().upper() if self.args else ""


def _unescape(arg: bytes) -> bytes:
    out, n = bytearray(), 0
    while n < len(arg):
        if arg[n : n + 1] == b"\\" and n + 1 < len(arg):
            code = arg[n + 1 : n + 2]
            if code == b"x":
                out += bytes([int(arg[n + 2 : n + 4], 16)])
                n += 4
                continue
            out += _ESCAPES.get(code, code)
            n += 2
            continue
        out += arg[n : n + 1]
        n += 1
    return bytes(out)


class Monitor:
    """Everything one Redis server executes while the monitor runs (a raw ``MONITOR`` connection, in a thread).

    Use as a context manager; :attr:`seen` holds the commands, in the order the
    server ran them — a script's own commands (client ``lua``) right after it.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: list[Seen] = []
        self._socket = socket.create_connection((HOST, port), timeout=10)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._stop = f"clientstate-monitor-stop-{os.urandom(4).hex()}"

    def __enter__(self) -> Monitor:
        self._socket.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
        reader = self._socket.makefile("rb")
        if reader.readline().strip() != b"+OK":
            raise RuntimeError(f"MONITOR refused on {HOST}:{self.port}")
        self._reader = reader
        self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._reader:
            match = _MONITOR_LINE.match(line.rstrip(b"\r\n"))
            if match is None:
                continue
            args = tuple(_unescape(arg) for arg in _MONITOR_ARG.findall(match.group(4)))
            if args == (b"ECHO", self._stop.encode()):
                return
            self.seen.append(Seen(match.group(3).decode(), args))

    def __exit__(self, *exc: object) -> None:
        with socket.create_connection((HOST, self.port), timeout=10) as stopper:
            stopper.sendall(b"*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n" % (len(self._stop), self._stop.encode()))
            stopper.recv(256)
        self._thread.join(10)
        self._reader.close()
        self._socket.close()


_shared: LocalCluster | None = None
_shared_lock = threading.Lock()


def shared_cluster() -> LocalCluster:
    """The test run's cluster: started on the first call, stopped when the process exits.

    Raises:
        RuntimeError: it could not be started (``redis-server`` missing or failing).
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LocalCluster().start()
            atexit.register(_shared.stop)
        return _shared


if __name__ == "__main__":  # pragma: no cover - a manual helper
    cluster = LocalCluster().start()
    print(cluster.url, *(node.address for node in cluster.nodes))
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()
    cluster.stop()
    os._exit(0)
