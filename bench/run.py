"""Benchmark clientstate against its peers and the floors, in one process, and check the targets.

Usage::

    .venv/bin/python bench/run.py [--rounds N] [--target S] [--quick]
                                  [--json out.json] [--markdown out.md]

Prints (and optionally writes) a Markdown report: the codec table (save and
load per implementation, as µs, ops/s, cookie bytes and ratios to the floors
measured in the same run), the in-process request table (ASGI and WSGI, with
the overhead over each implementation's baseline), the Set-Cookie output of a
100-request mix, and the targets, each met or not met. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: import the bench package from the repository root, and keep
    # bench/ itself off sys.path (bench/profile.py would shadow the stdlib module).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.codecs import Codec, build_codecs, verify
from bench.http_scenarios import (
    MixResult,
    RequestCase,
    build_mix_runs,
    build_request_cases,
    check_case,
)
from bench.machine import machine_info, machine_lines
from bench.timing import Case, Stats, run_cases
from bench.workload import size_info

__all__ = ["main"]

# ----------------------------------------------------------------------------- results


@dataclass
class CodecRow:
    """Timings of one codec (``save`` is ``None`` for load-only rows)."""

    codec: Codec
    size: int
    save: Stats | None
    load: Stats


@dataclass
class Floor:
    """One operation of one floor: the fastest candidate of the run.

    Attributes:
        row: the candidate chosen.
        stats: its timings for this operation.
    """

    row: CodecRow
    stats: Stats

    @property
    def median(self) -> float:
        """The floor's median seconds per operation."""
        return self.stats.median


@dataclass
class RequestRow:
    """Timings of one request scenario."""

    case: RequestCase
    stats: Stats


@dataclass
class Target:
    """One benchmark target and what this run measured.

    Attributes:
        name: what is compared.
        goal: the target, as text.
        value: the measured figure (median-based), as text.
        met: whether the median figure meets the goal.
        rounds: in how many rounds the per-round figure met the goal, as text.
    """

    name: str
    goal: str
    value: str
    met: bool
    rounds: str = ""


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.2f}"


def _ops(seconds: float) -> str:
    return f"{1 / seconds:,.0f}" if seconds > 0 else "∞"


def _ratio(x: float, ref: float) -> str:
    return f"{x / ref:.2f}" if ref > 0 else "—"


def _rounds_met(values: Sequence[float], limit: float) -> str:
    return f"{sum(1 for v in values if v <= limit)}/{len(values)}"


class Report:
    """Everything measured in the run, and its Markdown rendering."""

    def __init__(
        self,
        meta: dict[str, Any],
        args: argparse.Namespace,
        codecs: list[CodecRow],
        requests: list[RequestRow],
        mix: list[MixResult],
        skipped: list[str],
    ) -> None:
        self.meta = meta
        self.args = args
        self.codecs = codecs
        self.requests = requests
        self.mix = mix
        self.skipped = skipped
        self.by_codec = {row.codec.name: row for row in codecs}
        self.by_request = {row.case.key: row for row in requests}
        self.floors: dict[tuple[str, str], Floor] = {}
        for group in ("a", "b"):
            for op in ("save", "load"):
                timed = [(getattr(r, op), r) for r in codecs if r.codec.floor == group]
                if timed:
                    stats, row = min(timed, key=lambda pair: pair[0].median)
                    self.floors[group, op] = Floor(row, stats)

    def floor(self, group: str, op: str) -> Floor | None:
        """Floor ``group`` (``"a"`` or ``"b"``) for ``op`` (``"save"`` or ``"load"``), if measured."""
        return self.floors.get((group, op))

    # -- overheads

    def overhead_rounds(self, key: str) -> list[float]:
        """Per-round overhead of a request case over its baseline, seconds."""
        row = self.by_request[key]
        assert row.case.baseline is not None
        base = self.by_request[row.case.baseline].stats.per_round
        return [s - b for s, b in zip(row.stats.per_round, base, strict=True)]

    def overhead(self, key: str) -> float:
        """Median case time minus median baseline time, seconds."""
        row = self.by_request[key]
        assert row.case.baseline is not None
        return row.stats.median - self.by_request[row.case.baseline].stats.median

    # -- tables

    def header(self) -> list[str]:
        """The run's description."""
        m = self.meta
        sizes = size_info()
        return [
            f"## Run — {m['date']}",
            "",
            *machine_lines(m),
            f"- loadavg at start {_load(m['loadavg_start'])}, at end {_load(m['loadavg_end'])}",
            f"- rounds={self.args.rounds}, ~{self.args.target:g} s per timed batch, cases "
            f"interleaved round by round; figures are medians over rounds; spread = "
            f"(slowest − fastest round) / median; gc {'on' if self.args.gc else 'off'} while timing",
            f"- state: {sizes['json_compact']} B compact JSON ({sizes['json_default']} B "
            f"json.dumps default), {sizes['msgpack_struct']} B msgspec MessagePack of the Struct",
        ]

    def codec_table(self) -> list[str]:
        """The save/load table."""
        lines = [
            "### Codec: save (state → cookie value) and load (cookie value → state)",
            "",
            "| implementation | value B | save µs | load µs | save ops/s | load ops/s "
            "| save ×(a) | load ×(a) | save ×(b) | load ×(b) | spread % |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]

        def versus(x: float | None, group: str, op: str) -> str:
            floor = self.floor(group, op)
            return "—" if x is None or floor is None else _ratio(x, floor.median)

        for row in self.codecs:
            s = row.save.median if row.save is not None else None
            ld = row.load.median
            spread = max(row.load.spread, row.save.spread if row.save is not None else 0.0) * 100
            name = row.codec.name
            chosen = [op for (_g, op), f in self.floors.items() if f.row is row]
            if chosen:
                name = f"**{name}** (floor for {' and '.join(chosen)})"
            lines.append(
                f"| {name} | {row.size} | {_us(s) if s is not None else '—'} | {_us(ld)} "
                f"| {_ops(s) if s is not None else '—'} | {_ops(ld)} "
                f"| {versus(s, 'a', 'save')} | {versus(ld, 'a', 'load')} "
                f"| {versus(s, 'b', 'save')} | {versus(ld, 'b', 'load')} | {spread:.0f} |"
            )
        lines += [
            "",
            "×(a), ×(b): median time ÷ floor (a) or (b) in this run. Each floor is the fastest of "
            "its candidates in this run, per operation (the bold rows). value B: length of the "
            "cookie value (reference rows: bytes of output). Load-only rows time `load` on the "
            "listed tokens in turn.",
            "",
        ]
        for group in ("a", "b"):
            save, load = self.floor(group, "save"), self.floor(group, "load")
            if save is not None and load is not None:
                lines.append(
                    f"- floor ({group}) this run: save {_us(save.median)} µs "
                    f"({_candidate(save.row.codec.name)}), load {_us(load.median)} µs "
                    f"({_candidate(load.row.codec.name)})"
                )
        lines.append("")
        lines += [f"- **{row.codec.name}**: {row.codec.note}" for row in self.codecs if row.codec.note]
        return lines

    def request_table(self) -> list[str]:
        """The in-process request table."""
        fa_save, fa_load = self.floor("a", "save"), self.floor("a", "load")
        lines = [
            "### In-process requests (responses serialised as the servers do; see bench/README.md)",
            "",
            "| scenario | µs/request | req/s | overhead µs | overhead ÷ floor (a) | spread % |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        for row in self.requests:
            t = row.stats.median
            if row.case.baseline is None:
                over = ratio = "—"
            else:
                o = self.overhead(row.case.key)
                over = _us(o)
                if fa_save is None or fa_load is None or row.case.role in ("ref", "baseline"):
                    ratio = "—"
                else:
                    ref = fa_load.median + (fa_save.median if row.case.role == "change" else 0.0)
                    ratio = f"{o / ref:.2f}"
            lines.append(
                f"| {row.case.label} | {_us(t)} | {_ops(t)} | {over} | {ratio} "
                f"| {row.stats.spread * 100:.0f} |"
            )
        lines += [
            "",
            "overhead = median time − median time of the row's baseline, the row marked "
            "\"baseline\" in its group: `ASGI …` rows over `ASGI bare app (baseline)`, `WSGI …` rows "
            "over `WSGI bare function app (baseline)`, `Starlette app …` rows over `Starlette app, bare "
            "(its baseline)`, `WSGI Flask …` rows over `WSGI Flask, sessions off (Flask's baseline)`. "
            "overhead ÷ floor (a): over floor (a)'s load (read, no cookie, tampered) or load + save "
            "(changing).",
        ]
        return lines

    def mix_table(self) -> list[str]:
        """The Set-Cookie output of the request mix."""
        lines = [
            "### Set-Cookie output over a request mix",
            "",
            "101 requests: 80 read-only, 15 changing, 5 anonymous (no cookie), in a fixed "
            "shuffled order, then a logout; the browser keeps what Set-Cookie gives it. "
            "Bytes count `Set-Cookie: <value>\\r\\n`.",
            "",
            "| implementation | responses with Set-Cookie | on read / change / anon / logout "
            "| Set-Cookie bytes | bytes per Set-Cookie | cookie deleted at logout |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        for r in self.mix:
            k = r.by_kind
            per = r.set_cookie_bytes / r.set_cookie_headers if r.set_cookie_headers else 0
            lines.append(
                f"| {r.name} | {r.responses_with_set_cookie} | {k['read']} / {k['change']} / "
                f"{k['anon']} / {k['logout']} | {r.set_cookie_bytes:,} | {per:.0f} "
                f"| {'yes' if r.logged_out else 'no'} |"
            )
        return lines

    # -- targets

    def targets(self) -> list[Target]:
        """Each target with this run's figure: issue 13's for the codec, the ASGI/Starlette and the Flask app
        rows (codec ≤ 1.2× its floor, read ≤ 0.40×, change ≤ 0.35×, inside Flask ≤ 0.10×), issue 4's for the
        bare WSGI function app and the no-cookie ASGI request."""
        out: list[Target] = []
        cs_a = self.by_codec.get("clientstate authenticated")
        cs_e = self.by_codec.get("clientstate encrypted")
        for label, row, group, limit in (
            ("codec save, authenticated", cs_a, "a", 1.2),
            ("codec load, authenticated", cs_a, "a", 1.2),
            ("codec save, encrypted", cs_e, "b", 1.2),
            ("codec load, encrypted", cs_e, "b", 1.2),
        ):
            op = "save" if "save" in label else "load"
            floor = self.floor(group, op)
            if row is None or floor is None:
                continue
            name = f"({group})"
            subject: Stats | None = getattr(row, op)
            assert subject is not None
            ref = floor.stats
            value = subject.median / ref.median
            per_round = [a / b for a, b in zip(subject.per_round, ref.per_round, strict=True)]
            out.append(Target(
                label, f"≤ {limit:.2f}× floor {name}", f"{value:.2f}×", value <= limit,
                _rounds_met(per_round, limit),
            ))
        for label, mine, peer, limit in (
            ("ASGI read-only overhead vs Starlette read", "asgi.clientstate.read",
             "asgi.starlette.read", 0.4),
            ("ASGI changing overhead vs Starlette modify", "asgi.clientstate.change",
             "asgi.starlette.change", 0.35),
            ("Starlette app: read-only overhead vs SessionMiddleware", "starlette_app.clientstate.read",
             "starlette_app.session.read", 0.4),
            ("Starlette app: changing overhead vs SessionMiddleware",
             "starlette_app.clientstate.change", "starlette_app.session.change", 0.35),
            ("WSGI read-only overhead vs Flask read", "wsgi.clientstate.read",
             "wsgi.flask.read", 0.07),
            ("WSGI changing overhead vs Flask modify", "wsgi.clientstate.change",
             "wsgi.flask.change", 0.06),
            ("Flask app: read-only overhead vs Flask session", "flask_app.clientstate.read",
             "wsgi.flask.read", 0.10),
            ("Flask app: changing overhead vs Flask session", "flask_app.clientstate.change",
             "wsgi.flask.change", 0.10),
        ):
            if mine not in self.by_request or peer not in self.by_request:
                continue
            value = self.overhead(mine) / self.overhead(peer)
            per_round = [
                a / b
                for a, b in zip(self.overhead_rounds(mine), self.overhead_rounds(peer), strict=True)
            ]
            out.append(Target(
                label, f"≤ {limit:.2f}× peer's overhead",
                f"{value:.3f}× ({_us(self.overhead(mine))} / {_us(self.overhead(peer))} µs)",
                value <= limit, _rounds_met(per_round, limit),
            ))
        if "asgi.clientstate.no_cookie" in self.by_request:
            o = self.overhead("asgi.clientstate.no_cookie")
            shown = f"{_us(o)} µs"
            if "asgi.ref.vary_only" in self.by_request:
                passthrough = self.overhead("asgi.ref.vary_only")
                shown += f" (a pass-through middleware adding Vary: {_us(passthrough)} µs)"
            out.append(Target(
                "ASGI no-cookie overhead", "≤ 1.50 µs", shown, o <= 1.5e-6,
                _rounds_met(self.overhead_rounds("asgi.clientstate.no_cookie"), 1.5e-6),
            ))
        for r in self.mix:
            if not r.name.startswith("clientstate"):
                continue
            k = r.by_kind
            ok = k == {"read": 0, "change": 15, "anon": 0, "logout": 1} and r.logged_out
            out.append(Target(
                f"Set-Cookie over the mix, {r.name}", "only the 15 changing + logout",
                f"{r.responses_with_set_cookie} responses (read {k['read']}, change "
                f"{k['change']}, anon {k['anon']}, logout {k['logout']}), {r.set_cookie_bytes:,} B",
                ok,
            ))
        return out

    def target_table(self) -> list[str]:
        """The targets section."""
        lines = [
            "### Targets",
            "",
            "| target | goal | measured (medians) | rounds meeting it | status |",
            "|---|---|---|--:|---|",
        ]
        for t in self.targets():
            lines.append(
                f"| {t.name} | {t.goal} | {t.value} | {t.rounds or '—'} "
                f"| {'met' if t.met else '**not met**'} |"
            )
        lines += [
            "",
            "measured: ratio of medians. rounds meeting it: the same figure computed within "
            "each round (cases are interleaved, so a round's figures were taken close together).",
        ]
        return lines

    def markdown(self) -> str:
        """The whole report."""
        lines = [*self.header(), ""]
        if self.skipped:
            lines += [f"- {s}" for s in self.skipped] + [""]
        lines += [*self.codec_table(), "", *self.request_table(), "", *self.mix_table(), ""]
        lines += self.target_table()
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:
        """Raw numbers (seconds per call, per round) for later comparison."""
        return {
            "meta": self.meta,
            "args": vars(self.args),
            "codecs": [
                {"name": r.codec.name, "kind": r.codec.kind, "floor": r.codec.floor, "bytes": r.size,
                 "save": r.save.per_round if r.save is not None else None,
                 "load": r.load.per_round}
                for r in self.codecs
            ],
            "floors": {
                f"{group}.{op}": {"name": f.row.codec.name, "median": f.median}
                for (group, op), f in self.floors.items()
            },
            "requests": [
                {"key": r.case.key, "label": r.case.label, "baseline": r.case.baseline,
                 "per_round": r.stats.per_round}
                for r in self.requests
            ],
            "mix": [asdict(r) for r in self.mix],
            "targets": [asdict(t) for t in self.targets()],
        }


def _load(avg: Sequence[float]) -> str:
    return " ".join(f"{x:.2f}" for x in avg)


def _candidate(name: str) -> str:
    """The bracketed construction of a floor candidate's row name."""
    return name[name.index("[") + 1 : -1] if name.endswith("]") and "[" in name else name


# ----------------------------------------------------------------------------- main


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> Report:
    """Check every implementation, time everything in one interleaved run, and build the report."""
    meta = machine_info()
    codecs, skipped = build_codecs(include_sketch=not args.no_sketch)
    requests, skipped_requests = build_request_cases()
    skipped += skipped_requests
    for message in skipped:
        _log(message)

    cases: list[Case] = []
    sizes = {}
    for codec in codecs:
        value = verify(codec)
        sizes[codec.name] = len(value)
        if codec.values is None:
            cases.append(Case(f"save:{codec.name}", codec.save))
            cases.append(Case(f"load:{codec.name}", _bind(codec.load, value)))
        else:
            cases.append(Case(f"load:{codec.name}", _cycle(codec.load, codec.values)))
    for case in requests:
        check_case(case)
        cases.append(Case(f"request:{case.key}", case.call))
    _log(f"sanity checks passed: {len(codecs)} codecs, {len(requests)} request scenarios")

    mix_runs, skipped_mix = build_mix_runs()
    skipped += skipped_mix
    mix = [run_mix() for run_mix in mix_runs]

    run_cases(cases, args.rounds, args.target, keep_gc=args.gc, progress=_log)
    meta["loadavg_end"] = os.getloadavg()
    stats = {case.key: case.stats for case in cases}

    def got(key: str) -> Stats:
        found = stats[key]
        assert found is not None
        return found

    codec_rows = [
        CodecRow(c, sizes[c.name], None if c.load_only else got(f"save:{c.name}"),
                 got(f"load:{c.name}"))
        for c in codecs
    ]
    request_rows = [RequestRow(r, got(f"request:{r.key}")) for r in requests]
    return Report(meta, args, codec_rows, request_rows, mix, skipped)


def _bind(load: Callable[[Any], object], value: object) -> Callable[[], object]:
    return lambda: load(value)


def _cycle(load: Callable[[Any], object], values: Sequence[object]) -> Callable[[], object]:
    """A call that loads the next of ``values`` each time, round and round."""
    following = itertools.cycle(values).__next__
    return lambda: load(following())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9, help="rounds per case (default 9)")
    parser.add_argument("--target", type=float, default=0.1,
                        help="seconds per timed batch (default 0.1)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: 3 rounds of ~5 ms batches (figures are rough)")
    parser.add_argument("--gc", action="store_true", help="keep the garbage collector on while timing")
    parser.add_argument("--no-sketch", action="store_true", help="leave out the sketch rows")
    parser.add_argument("--json", metavar="PATH", help="also write raw numbers as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the report as Markdown")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.target = 3, 0.005
    if args.rounds < 1 or args.target <= 0:
        parser.error("--rounds must be >= 1 and --target > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status (0 even when targets are not met)."""
    args = parse_args(argv)
    report = run(args)
    text = report.markdown()
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(
            "# clientstate benchmark\n\nGenerated by `bench/run.py`.\n\n" + text, encoding="utf-8"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_json(), indent=1), encoding="utf-8")
    met = sum(t.met for t in report.targets())
    _log(f"targets met: {met}/{len(report.targets())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
