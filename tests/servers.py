"""Real servers on free loopback ports, in this process: uvicorn for ASGI apps, waitress for WSGI apps.

Both start in a background thread and are ready when the context manager
yields; waits are bounded (``READY_TIMEOUT`` seconds) and shutdown joins the
thread with a timeout, so a broken server fails the test instead of hanging it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
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
