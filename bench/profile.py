"""Profile clientstate's hot paths: where the time of one load, save or request goes.

Usage::

    .venv/bin/python bench/profile.py [--paths load,save,...] [--iterations N] [--top K]

For each path it prints two things:

1. **steps**: the unprofiled time of the public calls the path is made of
   (e.g. for a load: base64url decoding, ``TokenCodec.open``, ``State.decode``,
   the whole ``load_value``), timed with the benchmark harness, so the
   remainder can be attributed to the glue between them;
2. **cProfile**: the top functions by own time, per operation. cProfile adds a
   fixed cost to every Python-level call, so it overstates paths made of many
   small calls; read its *shares* and call counts, and the steps for µs.

With ``--instructions`` it instead counts CPU instructions per operation under
``valgrind --tool=callgrind`` for clientstate, the floors and the peers' request
paths (one child process per subject, run in parallel; a few minutes).
Instruction counts do not move with the machine's load, so they cross-check the
timed request overheads of ``bench/run.py`` on a noisy machine. They are not
times, and they are **not comparable for cryptography**: valgrind hides CPU
features such as SHA-NI and VAES from OpenSSL, which then runs slower generic
code, so the floors' HMAC and AES-GCM count several times the instructions they
take natively. Use them for the Python-level glue; take codec ratios from the
timed run.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Must come before `import cProfile`: that imports the stdlib `profile` module,
    # which this file would shadow while bench/ is sys.path[0].
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import collections
import cProfile
import math
import os
import pstats
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.codecs import FLOOR_A, FLOOR_B, build_codecs
from bench.http_scenarios import (
    _Responder,
    asgi_request,
    asgi_scope,
    bare_asgi,
    bare_wsgi,
    build_request_cases,
    clientstate_asgi_inner,
    clientstate_token,
    clientstate_wsgi_inner,
    wsgi_environ,
    wsgi_request,
)
from bench.machine import machine_info, machine_lines
from bench.timing import Case, run_cases
from bench.workload import COOKIE_NAME, OTHER_COOKIES, STATE, VALUE, bump_cart, handler
from clientstate import asgi as cs_asgi
from clientstate import wsgi as cs_wsgi
from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate._core.binding import Binding
from clientstate._core.cookies import RequestCookies
from clientstate._core.handler import Loaded
from clientstate._core.headers import headers_to_add
from clientstate._core.token import Opened

__all__ = ["PATHS", "main"]

_ROOT = str(Path(__file__).resolve().parent.parent) + "/"


@dataclass
class HotPath:
    """One path to profile.

    Attributes:
        name: command-line name.
        title: what it is.
        call: one operation.
        steps: ``(label, callable)`` pairs timed separately, unprofiled.
    """

    name: str
    title: str
    call: Callable[[], object]
    steps: list[tuple[str, Callable[[], object]]]


def _codec_paths(encrypted: bool) -> list[HotPath]:
    h = handler(encrypted=encrypted)
    codec = h.codec(STATE)
    now = time.time()
    token = clientstate_token(encrypted)
    raw = b64url_decode(token)
    assert raw is not None
    opened = codec.open(token)
    assert isinstance(opened, Opened)
    payload = STATE.encode(VALUE)
    fresh: Loaded[Any] = Loaded()
    prefix = "enc-" if encrypted else ""
    mode = "encrypted" if encrypted else "authenticated"

    def load() -> object:
        return h.load_value(STATE, token, now)

    def save() -> object:
        return h.seal(STATE, fresh, STATE.encode(VALUE), now)

    return [
        HotPath(
            f"{prefix}load", f"ClientStored.load_value ({mode})", load,
            [
                ("b64url_decode(token)", lambda: b64url_decode(token)),
                ("TokenCodec.open(token) (includes b64url_decode)", lambda: codec.open(token)),
                ("State.decode(payload)", lambda: STATE.decode(opened.payload)),
                ("Loaded(...) with 10 keyword arguments", lambda: Loaded(
                    VALUE, None, present=True, issued_at=1, expires_at=None, key_id=1,
                    schema_version=1, payload=payload, reissue=False, keep_times=True,
                )),
                ("ClientStored.load_value (all)", load),
            ],
        ),
        HotPath(
            f"{prefix}save", f"State.encode + ClientStored.seal ({mode})", save,
            [
                ("State.encode(value) (encode + decode check)", lambda: STATE.encode(VALUE)),
                ("b64url_encode(raw token bytes)", lambda: b64url_encode(raw)),
                ("TokenCodec.seal(payload, issued_at)", lambda: codec.seal(payload, math.floor(now))),
                ("ClientStored.seal (given the payload)", lambda: h.seal(STATE, fresh, payload, now)),
                ("State.encode + ClientStored.seal (all)", save),
            ],
        ),
    ]


def _request_paths() -> list[HotPath]:
    token = clientstate_token(False)
    header = f"{OTHER_COOKIES}; {COOKIE_NAME}={token}"
    h = handler()
    binding = Binding(STATE, h)
    now = time.time()
    asgi_app = cs_asgi.setup(STATE, h, clientstate_asgi_inner)
    wsgi_app = cs_wsgi.setup(STATE, h, clientstate_wsgi_inner)
    read_scope, plain_scope = asgi_scope("/read", token), asgi_scope("/read", None)
    change_scope = asgi_scope("/change", token)
    environ = wsgi_environ("/read", token)
    responder = _Responder()
    changed_value = bump_cart(VALUE)

    def bare_asgi_request() -> None:
        asgi_request(bare_asgi, read_scope)

    def finish_unchanged() -> object:
        return binding.finish(binding.begin([header]))  # a slot serves one response: begin anew

    def finish_changed() -> object:
        changed = binding.begin([header])
        changed.state = changed_value
        return binding.finish(changed)

    shared = [
        ("RequestCookies([header]).get_all(name)",
         lambda: RequestCookies([header]).get_all(COOKIE_NAME)),
        ("ClientStored.load_value(token)", lambda: h.load_value(STATE, token, now)),
        ("Binding.begin([header])", lambda: binding.begin([header])),
        ("Binding.begin + finish, state unchanged", finish_unchanged),
        ("headers_to_add([], [], binding)", lambda: headers_to_add([], [], binding)),
    ]
    return [
        HotPath(
            "asgi-read", "ASGI request, read-only, valid cookie",
            lambda: asgi_request(asgi_app, read_scope),
            [
                *shared,
                ("bare ASGI request (baseline)", bare_asgi_request),
                ("ASGI request with clientstate (all)", lambda: asgi_request(asgi_app, read_scope)),
            ],
        ),
        HotPath(
            "asgi-no-cookie", "ASGI request, no Cookie header",
            lambda: asgi_request(asgi_app, plain_scope),
            [
                ("Binding.begin([])", lambda: binding.begin([])),
                ("Loaded()", Loaded),
                ("headers_to_add([], [], binding)", lambda: headers_to_add([], [], binding)),
                ("bare ASGI request (baseline)", bare_asgi_request),
                ("ASGI request with clientstate (all)",
                 lambda: asgi_request(asgi_app, plain_scope)),
            ],
        ),
        HotPath(
            "asgi-change", "ASGI request that changes the state",
            lambda: asgi_request(asgi_app, change_scope),
            [
                ("Binding.begin([header])", lambda: binding.begin([header])),
                ("Binding.finish(slot), state changed", finish_changed),
                ("bare ASGI request (baseline)", bare_asgi_request),
                ("ASGI request with clientstate (all)",
                 lambda: asgi_request(asgi_app, change_scope)),
            ],
        ),
        HotPath(
            "wsgi-read", "WSGI request, read-only, valid cookie",
            lambda: wsgi_request(wsgi_app, environ, responder),
            [
                *shared,
                ("bare WSGI request (baseline)", lambda: wsgi_request(bare_wsgi, environ, responder)),
                ("WSGI request with clientstate (all)",
                 lambda: wsgi_request(wsgi_app, environ, responder)),
            ],
        ),
    ]


def all_paths() -> list[HotPath]:
    """Every profiled path, in the default order."""
    return [*_codec_paths(False), *_codec_paths(True), *_request_paths()]


PATHS = ("load", "save", "enc-load", "enc-save", "asgi-read", "asgi-no-cookie", "asgi-change",
         "wsgi-read")


def _where(key: tuple[str, int, str]) -> str:
    filename, line, func = key
    if filename == "~":
        return func
    if filename.startswith(_ROOT):
        filename = filename[len(_ROOT):]
    elif "site-packages/" in filename:
        filename = filename.split("site-packages/", 1)[1]
    return f"{filename}:{line}({func})"


def profile_path(path: HotPath, iterations: int, top: int, sort: str) -> list[str]:
    """cProfile ``path.call`` over ``iterations`` operations; the top entries as Markdown rows."""
    for _ in range(min(iterations, 1000)):
        path.call()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iterations):
        path.call()
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    rows = sorted(raw.items(), key=lambda kv: kv[1][2 if sort == "tottime" else 3], reverse=True)
    lines = [
        f"cProfile, {iterations} operations, {total / iterations * 1e6:.2f} µs/op under the profiler; "
        f"top {top} by {sort}:",
        "",
        "| calls/op | own µs/op | own % | cum µs/op | function |",
        "|--:|--:|--:|--:|---|",
    ]
    for key, (_cc, ncalls, tottime, cumtime, _callers) in rows[:top]:
        lines.append(
            f"| {ncalls / iterations:g} | {tottime / iterations * 1e6:.2f} "
            f"| {tottime / total * 100:.1f} | {cumtime / iterations * 1e6:.2f} | `{_where(key)}` |"
        )
    return lines


def time_steps(path: HotPath, rounds: int) -> list[str]:
    """Unprofiled median µs of each step of ``path``, as Markdown rows."""
    cases = [Case(label, call) for label, call in path.steps]
    run_cases(cases, rounds, 0.02)
    lines = ["| step (unprofiled) | µs | spread % |", "|---|--:|--:|"]
    for case in cases:
        assert case.stats is not None
        lines.append(f"| {case.key} | {case.stats.median * 1e6:.2f} | {case.stats.spread * 100:.0f} |")
    return lines


# ----------------------------------------------------------------------------- instructions

#: (label, codec name in bench.codecs) for the codec subjects, and what each is compared with:
#: "floor (a)" / "floor (b)" is the candidate of that floor with the fewest instructions.
_CODEC_SUBJECTS = (
    ("clientstate authenticated", "clientstate authenticated", "floor (a)"),
    ("clientstate encrypted", "clientstate encrypted", "floor (b)"),
    ("floor (a) cryptography HMAC", f"{FLOOR_A} [cryptography HMAC keyed once, .copy()]", None),
    ("floor (a) hashlib ipad/opad", f"{FLOOR_A} [hashlib ipad/opad states, .copy()]", None),
    ("floor (a) stdlib hmac", f"{FLOOR_A} [stdlib hmac keyed once, .copy()]", None),
    ("floor (b) os.urandom nonce", f"{FLOOR_B} [os.urandom(12) nonce]", None),
    ("floor (b) pooled nonce", f"{FLOOR_B} [pooled os.urandom nonce]", None),
    ("old floor (a)", "ref: OLD floor (a), hmac.new per call + base64 module", "floor (a)"),
    ("sketch authenticated", "sketch: clientstate v1 authenticated token, lean code", "floor (a)"),
    ("sketch encrypted", "sketch: clientstate v1 encrypted token, lean code", "floor (b)"),
)
#: (request case key, baseline key, peer case key or None) for the request subjects.
_REQUEST_SUBJECTS = (
    ("asgi.bare", None, None),
    ("asgi.ref.vary_only", "asgi.bare", None),
    ("asgi.clientstate.no_cookie", "asgi.bare", None),
    ("asgi.clientstate.read", "asgi.bare", "asgi.starlette.read"),
    ("asgi.clientstate.change", "asgi.bare", "asgi.starlette.change"),
    ("asgi.starlette.read", "asgi.bare", None),
    ("asgi.starlette.change", "asgi.bare", None),
    ("wsgi.bare", None, None),
    ("wsgi.clientstate.no_cookie", "wsgi.bare", None),
    ("wsgi.clientstate.read", "wsgi.bare", "wsgi.flask.read"),
    ("wsgi.clientstate.change", "wsgi.bare", "wsgi.flask.change"),
    ("wsgi.flask.baseline", None, None),
    ("wsgi.flask.read", "wsgi.flask.baseline", None),
    ("wsgi.flask.change", "wsgi.flask.baseline", None),
    ("flask_app.clientstate.read", "wsgi.flask.baseline", "wsgi.flask.read"),
    ("flask_app.clientstate.change", "wsgi.flask.baseline", "wsgi.flask.change"),
    ("starlette_app.bare", None, None),
    ("starlette_app.clientstate.read", "starlette_app.bare", "starlette_app.session.read"),
    ("starlette_app.clientstate.change", "starlette_app.bare", "starlette_app.session.change"),
    ("starlette_app.session.read", "starlette_app.bare", None),
    ("starlette_app.session.change", "starlette_app.bare", None),
)
_COLLECTED = re.compile(r"Collected : (\d+)")


def instruction_subjects(only: str | None = None) -> dict[str, Callable[[], object]]:
    """Every subject the ``--instructions`` mode counts, by name (skipped peers are left out).

    ``only="codec"`` or ``"request"`` builds just that group (a child under
    valgrind builds only what it counts: set-up runs some fifty times slower there).
    """
    out: dict[str, Callable[[], object]] = {"empty call": _nothing}
    if only in (None, "codec"):
        codecs = {c.name: c for c in build_codecs()[0]}
        for label, name, _ref in _CODEC_SUBJECTS:
            codec = codecs[name]
            value = codec.save()
            out[f"save: {label}"] = codec.save
            out[f"load: {label}"] = _bound(codec.load, value)
    if only in (None, "request"):
        wanted = {key for key, _base, _peer in _REQUEST_SUBJECTS}
        for case in build_request_cases(encrypted_extra=False)[0]:
            if case.key in wanted:
                out[f"request: {case.key}"] = case.call
    return out


def _nothing() -> None:
    return None


def _bound(load: Callable[[Any], object], value: object) -> Callable[[], object]:
    return lambda: load(value)


def child(name: str, n: int) -> None:
    """Run ``n`` operations of one subject inside ``collections.deque``'s C loop.

    The parent runs this under callgrind with collection toggled on only inside
    ``deque_extend``, so set-up and interpreter start-up are not counted.
    """
    group = "request" if name.startswith("request: ") else "codec" if ":" in name else "none"
    call = instruction_subjects(group)[name]
    for _ in range(200):
        call()
    collections.deque((call() for _ in range(n)), maxlen=0)


def count_instructions(names: Sequence[str], n: int) -> dict[str, float]:
    """Instructions per operation of each subject, from one callgrind child process each."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind on PATH")
    script = str(Path(__file__).resolve())

    def one(name: str) -> tuple[str, float]:
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [valgrind, "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
                 "--toggle-collect=deque_extend", sys.executable, script, "--child", name,
                 "--iterations", str(n)],
                capture_output=True, text=True, check=False,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
        found = _COLLECTED.search(proc.stderr)
        if proc.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind run for {name!r} failed:\n{proc.stderr[-2000:]}")
        return name, int(found.group(1)) / n

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(pool.map(one, names))


def _wanted_subjects(names: Sequence[str], only: str | None) -> list[str]:
    """The subjects whose name contains one of the comma-separated ``only`` parts, plus what their rows need.

    A codec row needs its floor's candidates, a request row its baseline and
    its peer (and the peer's baseline); ``None`` keeps every subject.
    """
    if only is None:
        return list(names)
    parts = [part.strip() for part in only.split(",") if part.strip()]
    chosen = {name for name in names if any(part in name for part in parts)}
    for label, _name, ref in _CODEC_SUBJECTS:
        if ref is not None and ({f"save: {label}", f"load: {label}"} & chosen):
            chosen |= {f"{op}: {other}" for other, _n, r in _CODEC_SUBJECTS if r is None
                       and other.startswith(ref) for op in ("save", "load")}
    rows = {key: (base, peer) for key, base, peer in _REQUEST_SUBJECTS}
    for key, (base, peer) in rows.items():
        if f"request: {key}" in chosen:
            for extra in (base, peer, rows.get(peer or "", (None, None))[0]):
                if extra is not None:
                    chosen.add(f"request: {extra}")
    chosen.add("empty call")
    return [name for name in names if name in chosen]


def instruction_report(n: int, only: str | None = None) -> list[str]:
    """Count the subjects (every one, or those ``only`` selects) and render the codec and request tables."""
    names = _wanted_subjects(list(instruction_subjects()), only)
    counts = count_instructions(names, n)
    empty = counts["empty call"]
    lines = [
        f"## Instructions per operation (callgrind, {n} operations per subject, the empty "
        f"call's {empty:,.0f} subtracted)",
        "",
        "Codec rows: crypto runs without SHA-NI/VAES under valgrind, so these ratios are "
        "not the timed ones (see the module docstring).",
        "",
        "| codec | save Ir | load Ir | save × ref | load × ref | ref |",
        "|---|--:|--:|--:|--:|---|",
    ]

    def ir(name: str) -> float:
        return counts[name] - empty

    def floor_ir(op: str, ref: str) -> tuple[float, str]:
        """The fewest instructions among the candidates of floor ``ref``, and which."""
        return min((ir(f"{op}: {label}"), label) for label, _n, r in _CODEC_SUBJECTS
                   if r is None and label.startswith(ref))

    for label, _name, ref in _CODEC_SUBJECTS:
        if f"save: {label}" not in counts:
            continue
        save, load = ir(f"save: {label}"), ir(f"load: {label}")
        if ref is None:
            lines.append(f"| {label} | {save:,.0f} | {load:,.0f} | — | — | — |")
            continue
        (fs, fs_label), (fl, fl_label) = floor_ir("save", ref), floor_ir("load", ref)
        lines.append(
            f"| {label} | {save:,.0f} | {load:,.0f} | {save / fs:.2f} "
            f"| {load / fl:.2f} | {ref}: save {fs_label}, load {fl_label} |"
        )
    lines += [
        "",
        "| request | Ir | overhead Ir | overhead ÷ peer's overhead | peer |",
        "|---|--:|--:|--:|---|",
    ]
    for key, base, peer in _REQUEST_SUBJECTS:
        name = f"request: {key}"
        if name not in counts:
            continue
        total = ir(name)
        if base is None:
            lines.append(f"| {key} | {total:,.0f} | — | — | — |")
            continue
        over = total - ir(f"request: {base}")
        versus = "—"
        if peer is not None and f"request: {peer}" in counts:
            peer_row = next(row for row in _REQUEST_SUBJECTS if row[0] == peer)
            assert peer_row[1] is not None
            peer_over = ir(f"request: {peer}") - ir(f"request: {peer_row[1]}")
            versus = f"{over / peer_over:.3f}"
        lines.append(f"| {key} | {total:,.0f} | {over:,.0f} | {versus} | {peer or '—'} |")
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated, from: {', '.join(PATHS)} (default all)")
    parser.add_argument("--iterations", type=int, default=20000, help="operations profiled")
    parser.add_argument("--top", type=int, default=12, help="entries shown per path")
    parser.add_argument("--sort", choices=("tottime", "cumulative"), default="tottime")
    parser.add_argument("--rounds", type=int, default=5, help="rounds for the step timings")
    parser.add_argument("--no-steps", action="store_true", help="cProfile only")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per operation under valgrind instead (slow)")
    parser.add_argument("--ir-iterations", type=int, default=300,
                        help="operations counted per subject with --instructions (default 300)")
    parser.add_argument("--only", metavar="PARTS",
                        help="with --instructions: count only subjects whose name contains one of these "
                             "comma-separated parts (plus the floors, baselines and peers their rows need)")
    parser.add_argument("--child", metavar="SUBJECT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.paths.split(",")) - set(PATHS)
    if unknown:
        parser.error(f"unknown paths: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Profile the chosen paths and print the report."""
    args = parse_args(argv)
    if args.child:
        child(args.child, args.iterations)
        return 0
    title = "instruction counts" if args.instructions else "request-path profile"
    print("\n".join([f"# clientstate {title}", "", *machine_lines(machine_info()), ""]))
    if args.instructions:
        print("\n".join(instruction_report(args.ir_iterations, args.only)))
        return 0
    wanted = args.paths.split(",")
    paths = {p.name: p for p in all_paths()}
    for name in wanted:
        path = paths[name]
        print(f"## {name}: {path.title}\n")
        if not args.no_steps:
            print("\n".join(time_steps(path, args.rounds)) + "\n")
        print("\n".join(profile_path(path, args.iterations, args.top, args.sort)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
