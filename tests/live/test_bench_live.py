"""``bench/live.py`` runs (smoke mode: few sessions, in-process stores) and must not rot; figures are not checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_bench_live_runs_and_reports_every_measure() -> None:
    done = subprocess.run(
        [sys.executable, "bench/live.py", "--sessions", "200", "--stores", "memory,sqlite", "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["sessions"] == 200
    assert set(report) == {
        "sessions", "bytes_per_live_session", "bytes_per_live_connection_all", "bytes_per_detached_session",
        "evictions_per_second", "persist_pass_seconds", "shutdown_seconds",
    }
    assert len(report["persist_pass_seconds"]) == 3
    assert set(report["shutdown_seconds"]) == {"memory", "sqlite"}
    assert all(isinstance(seconds, float) for seconds in report["shutdown_seconds"].values())
