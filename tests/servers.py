"""Real servers on free loopback ports: in this process, uvicorn for ASGI apps and waitress for WSGI apps;
and :class:`ServerProcess`, a server run as a subprocess (the demo, the examples).

The in-process ones start in a background thread and are ready when the context manager
yields; waits are bounded (``READY_TIMEOUT`` seconds) and shutdown joins the
thread with a timeout, so a broken server fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import uvicorn
from waitress.server import create_server

READY_TIMEOUT = 20.0


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    """A listening-ready TCP socket bound to a free port on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this on Linux: no 40 ms Nagle / delayed-ACK stalls on small responses.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, 0))
    return sock


@contextmanager
def uvicorn_server(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn (one worker, h11, websockets); yields ``http://host:port``."""
    sock = free_socket(host)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", http="h11", ws="websockets-sansio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(READY_TIMEOUT)
        sock.close()


@contextmanager
def waitress_server(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the WSGI ``app`` with waitress (4 threads); yields ``http://host:port``."""
    server = create_server(app, host=host, port=0, threads=4)
    port = server.effective_port
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.close()
        thread.join(READY_TIMEOUT)


class ServerProcess:
    """A server run as a subprocess that prints ``serving http://HOST:PORT/`` once it listens (``--port 0``).

    Its stdout and stderr are read into ``output`` (every line so far) by a
    thread; ``url`` is ``http://HOST:PORT`` without the trailing slash. Every
    wait is bounded: a server that does not print the line within
    ``startup_timeout`` seconds is killed and the test fails with its output.
    """

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.process = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, cwd=cwd,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        line = self.wait_for("serving http://", startup_timeout)
        self.url = line.split("serving ", 1)[1].split(" ", 1)[0].strip().rstrip("/")

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line (already printed, or within ``timeout`` s) containing ``text``; else kill and fail."""
        for line in self.output:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.output.append(line)
            if text in line:
                return line
        self.kill()
        raise AssertionError(f"the server never printed {text!r} within {timeout} s: {''.join(self.output)}")

    def drain(self) -> str:
        """Everything printed so far (after the process ended, all of it)."""
        while True:
            try:
                self.output.append(self.lines.get(timeout=0.5 if self.process.poll() is not None else 0.05))
            except queue.Empty:
                return "".join(self.output)

    def stop(self, signals: Sequence[signal.Signals] = (signal.SIGTERM,), timeout: float = 10.0) -> int:
        """Send each of ``signals`` in turn until the process exits (``timeout`` s each), then SIGKILL; its status."""
        for how in signals:
            self.process.send_signal(how)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
        self.kill()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL (``kill -9``) and wait."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
