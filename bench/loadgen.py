"""A small HTTP/1.1 keep-alive load generator, for machines without ``wrk``.

Usage::

    python -m bench.loadgen --port P --path /read [--header 'Name: value' ...]
                            [--connections 8] [--duration 2] [--max-requests N]

Runs in its own process (``bench/http_real.py`` starts it, as it starts
``wrk``): it opens ``--connections`` kept-alive connections to 127.0.0.1 and
on each sends one ``GET`` at a time, reading the whole response (framed by
``Content-Length``) before the next, until ``--duration`` seconds have passed
or ``--max-requests`` responses have arrived. It prints one JSON line:
``{"requests", "seconds", "non_2xx", "errors"}``.

It is much slower than ``wrk``, so with it the server is not saturated and
requests/s measure the generator as much as the server; the server's CPU time
per request (what ``bench/http_real.py`` reads from ``/proc``) does not depend
on the generator.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time
from collections.abc import Sequence

__all__ = ["main", "run"]


class _Conn:
    """One kept-alive connection and the response being read on it."""

    __slots__ = ("buf", "need", "sock")

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""
        self.need = -1  # total bytes of the current response, once its head is read

    def feed(self, data: bytes) -> int | None:
        """Add received bytes; the status code once the response is complete, else ``None``."""
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return None
            head = self.buf[:end].decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding":
                    raise ValueError("chunked responses are not supported by this generator")
            self.need = end + 4 + length
        if len(self.buf) < self.need:
            return None
        status = int(self.buf[9:12])
        self.buf = self.buf[self.need :]
        self.need = -1
        return status


def run(port: int, request: bytes, connections: int, duration: float, max_requests: int) -> dict[str, float]:
    """Drive the server; returns the counts (see the module docstring)."""
    selector = selectors.DefaultSelector()
    conns = [_Conn(port) for _ in range(connections)]
    done = non_2xx = errors = 0
    start = time.perf_counter()
    deadline = start + duration
    for conn in conns:
        conn.sock.sendall(request)
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    while done < max_requests:
        now = time.perf_counter()
        if now >= deadline:
            break
        for key, _ in selector.select(timeout=deadline - now):
            conn = key.data
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                raise ConnectionError("the server closed a kept-alive connection")
            status = conn.feed(data)
            if status is None:
                continue
            done += 1
            if not 200 <= status < 400:
                non_2xx += 1
            try:
                conn.sock.sendall(request)
            except OSError:
                errors += 1
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.sock.close()
    return {"requests": done, "seconds": elapsed, "non_2xx": non_2xx, "errors": errors}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run, print the JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds (upper bound)")
    parser.add_argument("--max-requests", type=int, default=10**9)
    args = parser.parse_args(argv)
    lines = [f"GET {args.path} HTTP/1.1", "Host: 127.0.0.1", *args.header, "", ""]
    request = "\r\n".join(lines).encode("latin-1")
    result = run(args.port, request, args.connections, args.duration, args.max_requests)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
