"""Serve one benchmark app from this process, for ``bench/http_real.py``.

Usage::

    python -m bench.serve --server uvicorn-httptools|uvicorn-h11|waitress --kind KIND

The app is :func:`bench.apps.starlette_app` under uvicorn and
:func:`bench.apps.flask_app` under waitress, of the given kind. The process
binds a free loopback port, prints ``LISTENING <port>`` on one line, and serves
until it is terminated. Keys and secrets come from the parent
(:func:`bench.workload.child_env`), so the parent's cookies load here.

Servers, one worker each, as deployed: uvicorn with the ``asyncio`` loop, the
named HTTP implementation, access log off, lifespan off; waitress with its
defaults (4 threads in one process).
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import apps

__all__ = ["SERVERS", "main"]

#: Server name → (framework of the app it serves, description).
SERVERS: Final = {
    "uvicorn-httptools": ("starlette", "uvicorn, 1 worker, httptools parser, asyncio loop"),
    "uvicorn-h11": ("starlette", "uvicorn, 1 worker, h11 parser, asyncio loop"),
    "waitress": ("flask", "waitress, 1 process, its default 4 threads"),
}


def _bound() -> socket.socket:
    # proto=IPPROTO_TCP as getaddrinfo gives when uvicorn binds by itself: asyncio sets
    # TCP_NODELAY only on sockets whose proto says TCP. With proto 0, a kept-alive
    # response written in two parts waits for the client's delayed ACK (~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _announce(port: int) -> None:
    print(f"LISTENING {port}", flush=True)


def serve_uvicorn(kind: str, http: str) -> None:
    """Serve the Starlette app of ``kind`` with uvicorn's ``http`` implementation."""
    import uvicorn

    config = uvicorn.Config(
        apps.starlette_app(kind), http=http, loop="asyncio", lifespan="off", access_log=False,
        log_level="warning", ws="none",
    )
    server = uvicorn.Server(config)
    sock = _bound()
    sock.listen(config.backlog)  # connections queue until uvicorn accepts: ready to announce
    _announce(sock.getsockname()[1])
    server.run(sockets=[sock])


def serve_waitress(kind: str) -> None:
    """Serve the Flask app of ``kind`` with waitress."""
    from waitress.server import create_server

    server = create_server(apps.flask_app(kind), host="127.0.0.1", port=0)
    _announce(server.effective_port)
    server.run()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and serve until terminated."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--server", choices=sorted(SERVERS), required=True)
    parser.add_argument("--kind", choices=apps.KINDS, required=True)
    args = parser.parse_args(argv)
    if args.server == "waitress":
        serve_waitress(args.kind)
    else:
        serve_uvicorn(args.kind, args.server.removeprefix("uvicorn-"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
