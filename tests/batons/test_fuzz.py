"""The baton fuzz target: every seed through the harness, Hypothesis over it, and a bounded atheris run."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"
FUZZ_SECONDS = 10
FAST = settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _load() -> ModuleType:
    name = "clientstate_baton_fuzz_harness"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FUZZ_DIR / "baton_harness.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load()


def test_the_committed_corpus_is_the_harness_seeds() -> None:
    committed = {p.name: p.read_bytes() for p in (FUZZ_DIR / "corpus-batons").iterdir()}
    assert committed == harness.seeds()


def test_every_seed_passes_and_the_genuine_paths_resume() -> None:
    before = harness.current()
    for seed in harness.seeds().values():
        harness.check_one_input(seed)
    # "xor-genuine" and "owner" resumed alice's stream: her baton moved on, under the current key 2.
    assert harness.current() != before
    harness.check_one_input(b"\x01" + bytes(58))
    assert harness.STREAMS.list()[0].generation >= 3


@FAST
@given(st.binary(max_size=120))
def test_hypothesis_over_the_harness(data: bytes) -> None:
    harness.check_one_input(data)


@FAST
@given(st.integers(0, 15), st.binary(min_size=1, max_size=70))
def test_hypothesis_over_every_target(selector: int, rest: bytes) -> None:
    harness.check_one_input(bytes([selector]) + rest)


def test_atheris_target_runs_clean_for_a_bounded_time(tmp_path: Path) -> None:
    work = tmp_path / "corpus"
    work.mkdir()
    for seed in (FUZZ_DIR / "corpus-batons").iterdir():
        shutil.copy(seed, work / seed.name)
    command = [sys.executable, str(FUZZ_DIR / "fuzz_batons.py"), f"-max_total_time={FUZZ_SECONDS}", "-timeout=10",
               "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", str(work)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=FUZZ_SECONDS + 25, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert list(tmp_path.glob("crash-*")) == []
    runs = re.search(r"Done (\d+) runs in", output)
    assert runs is not None, output[-4000:]
    assert int(runs.group(1)) > 2_000, output[-4000:]
    inited = re.search(r"INITED cov: (\d+)", output)
    assert inited is not None, output[-4000:]
    assert int(inited.group(1)) > 50, output[-4000:]
