"""The documented example, examples/testing_example, runs green under pytest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "testing_example"


def test_the_testing_example_passes() -> None:
    assert (EXAMPLE / "test_demo_app.py").is_file()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLE), "-q", "-p", "no:cacheprovider",
         "-W", "ignore::DeprecationWarning"],
        capture_output=True, text=True, cwd=EXAMPLE.parents[1], timeout=180, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "7 passed" in result.stdout
