"""Benchmark one baton round trip, ``resume`` + ``release``, next to its HMAC floor, in one run.

Usage::

    python bench/batons.py [--rounds N] [--target S] [--no-instructions] [--ir-iterations N]

Rows (µs per round trip, median over interleaved rounds; see ``bench/timing.py``):

* ``Streams resume+release``: the blocking registry: decode and verify the
  presented baton, check the bindings and the generation, hand the stream
  out, take it back, seal the next baton.
* ``AsyncStreams resume+release``: the same through the async driver
  (coroutines driven without an event loop, as no resource call is needed).
* ``floor``: exactly the cryptography and encoding of a round trip and nothing
  else: a pre-keyed ``cryptography`` HMAC-SHA256 (already fed with the
  stream's binding, as the registry caches it) copied, fed the same 26 bytes
  and finalized, base64url-encoded; then the same 78 characters decoded and
  the tag verified with a second copy. The target is under 2× the floor.
* ``seal only`` / ``decode + verify only``: the two halves of the floor.

With valgrind on PATH it also counts instructions per round trip under
``callgrind`` (one child process per row, collection only inside the timed
loop), which do not move with the machine's load. Valgrind hides SHA-NI from
OpenSSL, so the floor's share of instructions is larger than its share of time.
The exit status is 0 whether or not the target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
_VENV = ROOT / ".venv"
if __package__ in (None, ""):
    sys.path[0] = str(ROOT)  # the repository root, not bench/ (bench/profile.py would shadow the stdlib)
    if importlib.util.find_spec("msgspec") is None and (_VENV / "bin" / "python").exists():
        # `python bench/batons.py` outside the virtualenv: run again under the project's interpreter.
        os.execv(str(_VENV / "bin" / "python"), [str(_VENV / "bin" / "python"), *sys.argv])

from cryptography.hazmat.primitives import hashes, hmac  # noqa: E402  (after the interpreter check)

from bench.timing import Case, run_cases  # noqa: E402  (after the interpreter check)
from clientstate._core.base64url import b64url_decode, b64url_encode  # noqa: E402  (after the interpreter check)
from clientstate._core.config import MAX_SECONDS  # noqa: E402  (after the interpreter check)
from clientstate.batons import AsyncStreams, Limits, Stream, Streams  # noqa: E402  (after the interpreter check)
from clientstate.batons.baton import binding  # noqa: E402  (after the interpreter check)
from clientstate.testing import fixed_keyring  # noqa: E402  (after the interpreter check)

__all__ = ["main", "subjects"]

SCOPE: Final = "db"
PRINCIPAL: Final = "alice"
FLOOR: Final = "floor: HMAC-SHA256 seal + verify + base64url"
_COLLECTED: Final = re.compile(r"Collected : (\d+)")
#: No timeout bites during a run (a stream idles while the other rows are timed).
FOREVER: Final = Limits(idle_timeout=MAX_SECONDS, max_lifetime=MAX_SECONDS)


class _Nothing:
    def rollback(self) -> None:
        return None

    def close(self) -> None:
        return None


def _sync_round_trip() -> Callable[[], object]:
    streams: Streams[_Nothing] = Streams(fixed_keyring(1), FOREVER)
    resource = _Nothing()
    stream = streams.open(lambda read_only: resource, principal=PRINCIPAL, scope=SCOPE)
    assert isinstance(stream, Stream)
    first = streams.release(stream)
    assert isinstance(first, str)
    baton: list[Any] = [first]
    resume, release = streams.resume, streams.release

    def round_trip() -> object:
        held: Any = resume(baton[0], scope=SCOPE, principal=PRINCIPAL)
        baton[0] = release(held)  # a refusal would make the next call raise: the run checks itself
        return held

    return round_trip


def _finish(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (no resource call) to its result."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended")


def _async_round_trip() -> Callable[[], object]:
    streams: AsyncStreams[_Nothing] = AsyncStreams(fixed_keyring(1), FOREVER)
    resource = _Nothing()
    stream = _finish(streams.open(lambda read_only: resource, principal=PRINCIPAL, scope=SCOPE))
    assert isinstance(stream, Stream)
    baton = [_finish(streams.release(stream))]

    def round_trip() -> object:
        held = _finish(streams.resume(baton[0], scope=SCOPE, principal=PRINCIPAL))
        baton[0] = _finish(streams.release(held))
        return held

    return round_trip


def _floor() -> tuple[Callable[[], object], Callable[[], object], Callable[[], object]]:
    """(round trip, seal only, decode + verify only) with nothing but HMAC and base64url."""
    fed = hmac.HMAC(fixed_keyring(1).current.subkey(b"baton"), hashes.SHA256())
    fed.update(binding(SCOPE, PRINCIPAL))
    head = bytes((1, 1)) + bytes(16) + (7).to_bytes(8, "big")

    def seal() -> str:
        mac = fed.copy()
        mac.update(head)
        return b64url_encode(head + mac.finalize())

    sealed = seal()

    def verify(text: str = sealed) -> bytes:
        data = b64url_decode(text)
        assert data is not None
        mac = fed.copy()
        mac.update(data[:26])
        mac.verify(data[26:])
        return data

    def round_trip() -> object:
        return verify(seal())

    return round_trip, seal, verify


def subjects() -> dict[str, Callable[[], object]]:
    """Every row, by name (each a zero-argument call of one operation)."""
    floor, seal, verify = _floor()
    return {
        "Streams resume+release": _sync_round_trip(),
        "AsyncStreams resume+release": _async_round_trip(),
        FLOOR: floor,
        "  seal only": seal,
        "  decode + verify only": verify,
    }


def _check() -> None:
    """Before timing: the round trips really rotate, and an old baton is refused."""
    streams: Streams[_Nothing] = Streams(fixed_keyring(1))
    stream = streams.open(lambda read_only: _Nothing(), principal=PRINCIPAL, scope=SCOPE)
    assert isinstance(stream, Stream)
    old = streams.release(stream)
    again = streams.resume(old, scope=SCOPE, principal=PRINCIPAL)
    assert isinstance(again, Stream)
    assert isinstance(streams.release(again), str)
    refused = streams.resume(old, scope=SCOPE, principal=PRINCIPAL)
    assert not isinstance(refused, Stream)
    assert refused.kind == "baton_reused"


def _child(name: str, n: int) -> None:
    call = subjects()[name] if name != "empty call" else (lambda: None)
    for _ in range(200):
        call()
    collections.deque((call() for _ in range(n)), maxlen=0)


def count_instructions(names: Sequence[str], n: int) -> dict[str, float] | None:
    """Instructions per call of each row under callgrind (``None`` without valgrind)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None

    def one(name: str) -> tuple[str, float]:
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [valgrind, "--tool=callgrind", f"--callgrind-out-file={tmp}/out", "--toggle-collect=deque_extend",
                 sys.executable, str(Path(__file__).resolve()), "--child", name, "--ir-iterations", str(n)],
                capture_output=True, text=True, check=False, env={**os.environ, "PYTHONHASHSEED": "0"},
            )
        found = _COLLECTED.search(proc.stderr)
        if proc.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind run for {name!r} failed:\n{proc.stderr[-2000:]}")
        return name, int(found.group(1)) / n

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(pool.map(one, ["empty call", *names]))


def report(rounds: int, target: float, instructions: bool, ir_iterations: int) -> list[str]:
    """Time every row (and count instructions if asked and possible); the Markdown lines."""
    _check()
    calls = subjects()
    cases = [Case(name, call) for name, call in calls.items()]
    run_cases(cases, rounds, target, progress=lambda line: print(f"  {line}", file=sys.stderr))
    median = {case.key: case.stats.median for case in cases if case.stats is not None}
    best = {case.key: case.stats.low for case in cases if case.stats is not None}
    counts = count_instructions(list(calls), ir_iterations) if instructions else None
    lines = [
        f"## Batons: resume + release ({rounds} rounds of ~{target:g} s batches, one process)",
        "",
        "| row | µs (median) | × floor | µs (best round) | × floor | spread | Ir | Ir × floor |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for case in cases:
        assert case.stats is not None
        ir = ir_ratio = "—"
        if counts is not None:
            own = counts[case.key] - counts["empty call"]
            ir = f"{own:,.0f}"
            ir_ratio = f"{own / (counts[FLOOR] - counts['empty call']):.2f}"
        lines.append(
            f"| {case.key} | {case.stats.median * 1e6:.2f} | {case.stats.median / median[FLOOR]:.2f} "
            f"| {case.stats.low * 1e6:.2f} | {case.stats.low / best[FLOOR]:.2f} "
            f"| {case.stats.spread * 100:.0f}% | {ir} | {ir_ratio} |"
        )
    ratio = median["Streams resume+release"] / median[FLOOR]
    lines += ["", f"Target: `Streams resume+release` under 2× the floor (medians): {ratio:.2f}× — "
                  f"{'met' if ratio < 2 else 'NOT met'} (best rounds: "
                  f"{best['Streams resume+release'] / best[FLOOR]:.2f}×; a spread over ~30% means a busy machine)."]
    if instructions and counts is None:
        lines.append("(valgrind is not on PATH: no instruction counts.)")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds per row (default 9)")
    parser.add_argument("--target", type=float, default=0.1, help="seconds per timed batch (default 0.1)")
    parser.add_argument("--no-instructions", action="store_true", help="skip the callgrind counts")
    parser.add_argument("--ir-iterations", type=int, default=2000, help="calls counted per row under callgrind")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.ir_iterations)
        return 0
    asyncio.get_event_loop_policy()  # the async driver is imported and usable; no loop is needed to time it
    print("\n".join(report(args.rounds, args.target, not args.no_instructions, args.ir_iterations)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
