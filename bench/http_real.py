"""Real-HTTP benchmark: the same app bare / with the framework's session / with clientstate, over sockets.

Usage::

    .venv/bin/python bench/http_real.py [--rounds N] [--duration S] [--connections C]
                                        [--servers uvicorn-httptools,uvicorn-h11,waitress]
                                        [--load-generator auto|wrk|python] [--quick]
                                        [--markdown out.md] [--json out.json]

For each server (``bench/serve.py``: uvicorn serving the Starlette app of
``bench/apps.py``, waitress serving the Flask app) it starts one server process
per app kind (bare, the framework's session, clientstate, clientstate
encrypted), checks every route once, then runs rounds: in each round every
(kind, route) gets one load run of ``--duration`` seconds, in an order rotated
from round to round. The load comes from another process, ``wrk`` (one thread,
``--connections`` kept-alive connections) or, without it,
``bench/loadgen.py``. Per run it records requests/s and the server process's
CPU time (utime + stime of all its threads, from ``/proc/<pid>/stat``) divided
by the requests served: on a shared machine the CPU time per request is the
stable figure, requests/s move with the neighbours.

The report gives medians over rounds, spreads, and the overhead ratio
(clientstate − bare) ÷ (framework session − bare) for read-only and changing
requests, from CPU time per request (and, beside it, from 1 / requests/s).

``--load-generator auto`` (the default) uses ``wrk`` when it is on ``PATH``
and says so in the report; otherwise it falls back to ``bench/loadgen.py`` and
says that. ``--load-generator wrk`` fails at once when ``wrk`` is missing
(Debian/Ubuntu: ``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.apps import KINDS
from bench.machine import machine_info, machine_lines
from bench.serve import SERVERS
from bench.workload import COOKIE_NAME, OTHER_COOKIES, STATE, VALUE, bump_cart, child_env, handler

__all__ = ["main"]

ROOT: Final = Path(__file__).resolve().parent.parent
ROUTES: Final = ("read", "change")
READY_TIMEOUT: Final = 30.0
WARMUP_REQUESTS: Final = 200
INSTALL_WRK: Final = "install it with `apt-get install -y wrk` (Debian, Ubuntu), or pass --load-generator python"
_BROWSER: Final = (
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
    "Accept: text/html,application/xhtml+xml,*/*;q=0.8",
    "Accept-Language: en-US,en;q=0.5",
    "Accept-Encoding: gzip, deflate, br, zstd",
)
_LABELS: Final = {
    "bare": "bare app (no session)",
    "session": "framework session",
    "clientstate": "clientstate",
    "clientstate-encrypted": "clientstate, encrypted",
}
_PEER: Final = {"starlette": "Starlette SessionMiddleware", "flask": "Flask session"}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- load generators


def resolve_generator(choice: str) -> tuple[str, str]:
    """``(generator, description)`` for ``--load-generator``; a missing ``wrk`` asked for by name exits.

    Raises:
        SystemExit: ``choice`` is ``wrk`` and ``wrk`` is not on ``PATH``.
    """
    wrk = shutil.which("wrk")
    if choice == "wrk" and wrk is None:
        raise SystemExit(f"bench/http_real.py: wrk is not on PATH; {INSTALL_WRK}")
    if choice in ("wrk", "auto") and wrk is not None:
        version = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        first = (version.stdout or version.stderr).splitlines()[0] if (version.stdout or version.stderr) else "wrk"
        return "wrk", first.split(" Copyright")[0].strip()
    if choice == "auto":
        _log(f"wrk is not on PATH: falling back to bench/loadgen.py ({INSTALL_WRK.split(', or')[0]} for wrk)")
    return "python", "bench/loadgen.py (Python, selectors; slower than the servers: req/s is the generator's)"


@dataclass
class LoadRun:
    """One load run against one server.

    Attributes:
        requests: responses received.
        seconds: the generator's wall time.
        cpu: the server process's CPU seconds (user + system) over the run.
        non_2xx: responses outside 2xx/3xx.
        errors: socket errors the generator counted.
    """

    requests: int
    seconds: float
    cpu: float
    non_2xx: int
    errors: int

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds

    @property
    def cpu_per_request(self) -> float:
        """Server CPU seconds per request."""
        return self.cpu / self.requests


_WRK_DONE = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNITS: Final = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_wrk(output: str) -> tuple[int, float, int, int]:
    """``(requests, seconds, non-2xx responses, socket errors)`` from wrk's summary.

    Raises:
        ValueError: the summary line is missing.
    """
    done = _WRK_DONE.search(output)
    if done is None:
        raise ValueError(f"no summary in wrk's output:\n{output}")
    non_2xx = _WRK_NON2XX.search(output)
    errors = _WRK_ERRORS.search(output)
    return (
        int(done.group(1)),
        float(done.group(2)) * _UNITS[done.group(3)],
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(g) for g in errors.groups()) if errors else 0,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and all its threads, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(generator: str, pid: int, port: int, path: str, headers: Sequence[str], duration: int,
         connections: int) -> LoadRun:
    """One load run of ``duration`` seconds; the server's CPU time is read around it."""
    if generator == "wrk":
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
        for header in headers:
            cmd += ["-H", header]
        cmd.append(f"http://127.0.0.1:{port}{path}")
    else:
        cmd = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--path", path,
               "--connections", str(connections), "--duration", str(duration)]
        for header in headers:
            cmd += ["--header", header]
    before = cpu_seconds(pid)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, cwd=ROOT, check=False)
    cpu = cpu_seconds(pid) - before
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    if generator == "wrk":
        requests, seconds, non_2xx, errors = parse_wrk(done.stdout)
    else:
        got = json.loads(done.stdout)
        requests, seconds, non_2xx, errors = got["requests"], got["seconds"], got["non_2xx"], got["errors"]
    if requests == 0 or non_2xx or errors:
        raise RuntimeError(f"{path} on port {port}: {requests} responses, {non_2xx} non-2xx, {errors} errors")
    return LoadRun(requests, seconds, cpu, non_2xx, errors)


# ----------------------------------------------------------------------------- servers


@dataclass
class Running:
    """A server process serving one app kind."""

    server: str
    kind: str
    proc: subprocess.Popen[str]
    port: int
    log: IO[str]


@contextmanager
def started(server: str, kinds: Sequence[str], logdir: str) -> Iterator[dict[str, Running]]:
    """Start ``python -m bench.serve`` for ``server`` and each of ``kinds`` (all at once); stop them on exit."""
    procs: dict[str, Running] = {}
    try:
        for kind in kinds:
            log = open(os.path.join(logdir, f"{server}-{kind}.log"), "w+", encoding="utf-8")  # noqa: SIM115
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.serve", "--server", server, "--kind", kind],
                cwd=ROOT, env={**os.environ, **child_env()}, stdout=subprocess.PIPE, stderr=log,
                text=True,
            )
            procs[kind] = Running(server, kind, proc, 0, log)
        deadline = time.monotonic() + READY_TIMEOUT
        for kind, running in procs.items():
            stdout = running.proc.stdout
            assert stdout is not None
            selector = selectors.DefaultSelector()
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"{server} ({kind}) did not start in {READY_TIMEOUT:.0f} s")
            line = stdout.readline()
            if not line.startswith("LISTENING "):
                running.proc.wait(5)
                running.log.seek(0)
                raise RuntimeError(f"{server} ({kind}) failed to start: {line!r}\n{running.log.read()[-2000:]}")
            running.port = int(line.split()[1])
        yield procs
    finally:
        for running in procs.values():
            running.proc.terminate()
        for running in procs.values():
            try:
                running.proc.wait(10)
            except subprocess.TimeoutExpired:
                running.proc.kill()
                running.proc.wait(10)
            running.log.close()


def get(port: int, path: str, cookie: str | None, conn: http.client.HTTPConnection | None = None
        ) -> tuple[int, list[tuple[str, str]], bytes]:
    """One ``GET`` with the browser headers and the session cookie; ``(status, headers, body)``."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = dict(h.split(": ", 1) for h in _BROWSER)
    if cookie is not None:
        headers["Cookie"] = f"{OTHER_COOKIES}; {COOKIE_NAME}={cookie}"
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        if own:
            conn.close()


def _set_cookie(headers: list[tuple[str, str]]) -> str | None:
    found = [v for k, v in headers if k.lower() == "set-cookie"]
    if not found:
        return None
    assert len(found) == 1, found
    name, _, rest = found[0].partition("=")
    assert name == COOKIE_NAME, found
    return rest.split(";", 1)[0]


def prepare(running: dict[str, Running]) -> dict[str, str]:
    """Log in on every session kind, check every route, warm every server up; the cookie of each kind.

    Raises:
        AssertionError: a response is not what the route must answer.
    """
    cookies: dict[str, str] = {}
    for kind, server in running.items():
        if kind == "bare":
            continue
        status, headers, _body = get(server.port, "/login", None)
        cookie = _set_cookie(headers)
        assert status == 200, (kind, status, headers)
        assert cookie, (kind, headers)
        cookies[kind] = cookie
    cookies["bare"] = cookies["clientstate"]  # the same Cookie header as clientstate's requests
    for kind, server in running.items():
        cookie = cookies[kind]
        status, headers, body = get(server.port, "/read", cookie)
        assert status == 200, (kind, status)
        assert _set_cookie(headers) is None, (kind, "read-only request set a cookie", headers)
        assert body == (b"ok" if kind == "bare" else str(VALUE.user_id).encode()), (kind, body)
        status, headers, body = get(server.port, "/change", cookie)
        assert status == 200, (kind, status)
        new = _set_cookie(headers)
        assert (new is None) == (kind == "bare"), (kind, headers)
        if kind.startswith("clientstate") and new is not None:
            loaded = handler(encrypted=kind.endswith("encrypted")).load_value(STATE, new, time.time())
            assert loaded.state == bump_cart(VALUE), (kind, loaded)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for n in range(WARMUP_REQUESTS):
                get(server.port, "/read" if n % 2 else "/change", cookie, conn)
        finally:
            conn.close()
    return cookies


# ----------------------------------------------------------------------------- runs


@dataclass
class Series:
    """The load runs of one (server, kind, route), in round order."""

    server: str
    kind: str
    route: str
    runs: list[LoadRun] = field(default_factory=list)

    def rps(self) -> list[float]:
        """Requests/s per round."""
        return [r.rps for r in self.runs]

    def cpu(self) -> list[float]:
        """Server CPU seconds per request, per round."""
        return [r.cpu_per_request for r in self.runs]


def measure(args: argparse.Namespace, generator: str) -> dict[tuple[str, str, str], Series]:
    """Every server, kind and route, rounds interleaved within each server."""
    results: dict[tuple[str, str, str], Series] = {}
    headers_of = list(_BROWSER)
    for server in args.servers:
        with tempfile.TemporaryDirectory(prefix="bench-http-") as logdir, started(server, KINDS, logdir) as running:
            cookies = prepare(running)
            _log(f"{server}: {len(running)} servers up and checked")
            plan = [(kind, route) for kind in KINDS for route in ROUTES]
            for kind, route in plan:
                results[server, kind, route] = Series(server, kind, route)
            for round_no in range(args.rounds):
                shift = (round_no * 3) % len(plan)
                for kind, route in plan[shift:] + plan[:shift]:
                    target = running[kind]
                    headers = [*headers_of, f"Cookie: {OTHER_COOKIES}; {COOKIE_NAME}={cookies[kind]}"]
                    results[server, kind, route].runs.append(load(
                        generator, target.proc.pid, target.port, f"/{route}", headers, args.duration,
                        args.connections,
                    ))
                _log(f"{server}: round {round_no + 1}/{args.rounds} done")
    return results


# ----------------------------------------------------------------------------- report


def _spread(values: Sequence[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values) * 100


def _over(x: float, y: float) -> float:
    return x / y if y else float("nan")


def _ratios(results: dict[tuple[str, str, str], Series], server: str, kind: str, route: str,
            figure: str) -> tuple[float, list[float]]:
    """(ratio of medians, per-round ratios) of (kind − bare) ÷ (session − bare) for ``figure``."""

    def values(k: str) -> list[float]:
        series = results[server, k, route]
        return series.cpu() if figure == "cpu" else [1 / x for x in series.rps()]

    mine, peer, bare = values(kind), values("session"), values("bare")
    med = statistics.median
    of_medians = _over(med(mine) - med(bare), med(peer) - med(bare))
    per_round = [_over(m - b, p - b) for m, p, b in zip(mine, peer, bare, strict=True)]
    return of_medians, per_round


def report(args: argparse.Namespace, meta: dict[str, Any], generator: str,
           results: dict[tuple[str, str, str], Series]) -> str:
    """The Markdown report."""
    m = meta
    lines = [
        f"## Real HTTP — {m['date']}",
        "",
        *machine_lines(m),
        f"- load generator: {generator}, in its own process, 1 thread, {args.connections} kept-alive "
        f"connections, {args.duration} s per run; {args.rounds} round{'' if args.rounds == 1 else 's'}, "
        "(kind, route) runs rotated "
        "from round to round within each server",
        f"- loadavg at start {' '.join(f'{x:.2f}' for x in m['loadavg_start'])}, at end "
        f"{' '.join(f'{x:.2f}' for x in m['loadavg_end'])}",
        "- CPU µs/request: utime + stime of the server process (all threads) over the run, from "
        "/proc/<pid>/stat, ÷ responses; medians over rounds; spread = (max − min) / median",
        "",
    ]
    for server in args.servers:
        framework, description = SERVERS[server]
        lines += [
            f"### {description}, serving the {framework.capitalize()} app",
            "",
            "| app | route | req/s | spread % | server CPU µs/request | spread % |",
            "|---|---|--:|--:|--:|--:|",
        ]
        for kind in KINDS:
            label = _PEER[framework] if kind == "session" else _LABELS[kind]
            for route in ROUTES:
                s = results[server, kind, route]
                lines.append(
                    f"| {label} | /{route} | {statistics.median(s.rps()):,.0f} | {_spread(s.rps()):.0f} "
                    f"| {statistics.median(s.cpu()) * 1e6:,.1f} | {_spread(s.cpu()):.0f} |"
                )
        lines += [
            "",
            "| overhead ratio (clientstate − bare) ÷ (peer − bare) | route | from CPU/request "
            "| per round (min–max) | from 1 / (req/s) |",
            "|---|---|--:|--:|--:|",
        ]
        for kind in ("clientstate", "clientstate-encrypted"):
            for route in ROUTES:
                cpu, rounds = _ratios(results, server, kind, route, "cpu")
                wall, _ = _ratios(results, server, kind, route, "wall")
                lines.append(
                    f"| {_LABELS[kind]} vs {_PEER[framework]} | /{route} | {cpu:.2f} "
                    f"| {min(rounds):.2f}–{max(rounds):.2f} | {wall:.2f} |"
                )
        lines.append("")
    return "\n".join(lines) + "\n"


def as_json(args: argparse.Namespace, meta: dict[str, Any], generator: str,
            results: dict[tuple[str, str, str], Series]) -> dict[str, Any]:
    """Raw figures for later comparison."""
    return {
        "meta": meta,
        "args": dict(vars(args)),
        "generator": generator,
        "series": [
            {"server": s.server, "kind": s.kind, "route": s.route, "runs": [asdict(r) for r in s.runs]}
            for s in results.values()
        ],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--duration", type=int, default=2, help="whole seconds per load run (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="kept-alive connections (default 8)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"comma-separated, from: {', '.join(SERVERS)} (default all)")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "python"), default="auto",
                        help="auto: wrk if on PATH, else bench/loadgen.py (default auto)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 1 round of 1 s runs")
    parser.add_argument("--json", metavar="PATH", help="also write raw figures as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the report as Markdown")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 1
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.duration < 1 or args.connections < 1:
        parser.error("--rounds, --duration and --connections must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report."""

    args = parse_args(argv)
    generator, described = resolve_generator(args.load_generator)
    _log(f"load generator: {described}")
    meta = machine_info()
    results = measure(args, generator)
    meta["loadavg_end"] = os.getloadavg()
    text = report(args, meta, described, results)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(
            "# clientstate real-HTTP benchmark\n\nGenerated by `bench/http_real.py`.\n\n" + text, encoding="utf-8"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(as_json(args, meta, described, results), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
