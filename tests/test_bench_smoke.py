"""The benchmark commands run (smoke mode): they must not rot. Figures are not checked: tests never time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_runs_and_reports_targets() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "### Targets" in done.stdout
    assert "| clientstate authenticated |" in done.stdout
    assert "(floor for save" in done.stdout  # a floor (a) and a floor (b) candidate were chosen
    assert "- floor (a) this run: save" in done.stdout
    assert "- floor (b) this run: save" in done.stdout
    assert "| Starlette app + clientstate, read-only, valid cookie |" in done.stdout
    assert "| WSGI Flask app + clientstate (sessions off), changes the state |" in done.stdout
    assert "tokens of 8 processes in turn" in done.stdout
    assert "Set-Cookie over the mix, clientstate ASGI | only the 15 changing + logout | 16 responses" in done.stdout


def test_real_http_quick_runs_every_server_and_app() -> None:
    # The same generator choice the bench documents: wrk when it is on PATH, else bench/loadgen.py;
    # the report names the one used, so nothing is skipped silently.
    done = subprocess.run(
        [sys.executable, "-m", "bench.http_real", "--quick", "--load-generator", "auto"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    expected = "- load generator: wrk " if shutil.which("wrk") else "- load generator: bench/loadgen.py"
    assert expected in out
    for server in ("uvicorn, 1 worker, httptools parser", "uvicorn, 1 worker, h11 parser", "waitress, 1 process"):
        assert f"### {server}" in out
    for row in (
        "| clientstate | /read |", "| clientstate, encrypted | /change |", "| Starlette SessionMiddleware | /read |",
        "| Flask session | /change |", "| clientstate vs Flask session | /read |",
        "| clientstate vs Starlette SessionMiddleware | /change |",
    ):
        assert row in out


def test_real_http_refuses_a_missing_wrk_when_asked_for_it() -> None:
    # --load-generator wrk must fail clearly, never fall back, when wrk is not on PATH.
    done = subprocess.run(
        [sys.executable, "-m", "bench.http_real", "--quick", "--load-generator", "wrk"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={"PATH": "/nonexistent"},
    )
    assert done.returncode != 0
    assert "wrk is not on PATH" in done.stderr
    assert "apt-get install -y wrk" in done.stderr
