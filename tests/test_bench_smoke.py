"""The benchmark command runs (smoke mode): it must not rot. Figures are not checked: tests never time."""

from __future__ import annotations

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
    assert "Set-Cookie over the mix, clientstate ASGI | only the 15 changing + logout | 16 responses" in done.stdout
