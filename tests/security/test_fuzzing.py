"""Fuzzing in CI: a bounded atheris run of ``fuzz/fuzz_tokens.py``, and Hypothesis properties over the same harness.

The atheris run is coverage-guided (libFuzzer) and takes about 20 s; long runs
are documented in ``fuzz/README.md``. The Hypothesis tests are derandomized, so
they are fast and give the same examples on every run.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clientstate._core.token import Mode
from tests.security.support import ALPHABET

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"
FUZZ_SECONDS = 20


def _load_harness() -> ModuleType:
    name = "clientstate_fuzz_harness"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FUZZ_DIR / "harness.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


def test_atheris_fuzz_target_runs_clean_for_a_bounded_time(tmp_path: Path) -> None:
    work = tmp_path / "corpus"
    work.mkdir()
    seeds = sorted((FUZZ_DIR / "corpus").iterdir())
    assert len(seeds) >= 20
    for seed in seeds:
        shutil.copy(seed, work / seed.name)
    command = [
        sys.executable,
        str(FUZZ_DIR / "fuzz_tokens.py"),
        f"-max_total_time={FUZZ_SECONDS}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        f"-dict={FUZZ_DIR / 'cookie.dict'}",
        f"-artifact_prefix={tmp_path}/",
        str(work),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=FUZZ_SECONDS + 25, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert list(tmp_path.glob("crash-*")) == []
    runs = re.search(r"Done (\d+) runs in", output)
    assert runs is not None, output[-4000:]
    assert int(runs.group(1)) > 2_000
    # Coverage feedback works: the instrumented library reports coverage once the seeds are read.
    inited = re.search(r"INITED cov: (\d+)", output)
    assert inited is not None, output[-4000:]
    assert int(inited.group(1)) > 100


FAST = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted((FUZZ_DIR / "corpus").iterdir())]


@FAST
@given(st.binary(max_size=700))
def test_any_fuzz_input_passes_the_harness(data: bytes) -> None:
    harness.check_one_input(data)


@FAST
@given(st.sampled_from(_seeds()), st.binary(max_size=8), st.integers(0, 4200), st.integers(0, 8))
def test_mutated_seed_inputs_pass_the_harness(seed: bytes, insert: bytes, at: int, cut: int) -> None:
    at = min(at, len(seed))
    mutated = seed[:at] + insert + seed[at + cut :]
    harness.check_one_input(mutated)


@FAST
@given(st.text())
@example("QQ")
@example("QR")
@example("QQ==")
@example("\u0663\u0663\u0663\u0663")
def test_b64url_decode_accepts_exactly_the_canonical_strings(text: str) -> None:
    harness.check_b64url(text)


@FAST
@given(st.text(alphabet=ALPHABET + "=+/%! \t\n\u00e9", max_size=40))
def test_b64url_decode_near_the_alphabet_accepts_exactly_the_canonical_strings(text: str) -> None:
    harness.check_b64url(text)


@FAST
@given(st.binary(max_size=100))
def test_every_canonical_encoding_decodes(data: bytes) -> None:
    from clientstate._core.base64url import b64url_decode

    encoded = harness.b64url_encode(data)
    assert b64url_decode(encoded) == data
    harness.check_b64url(encoded)


names = st.text(alphabet="cs \t=;\"'aé\x00", max_size=6)
values = st.text(alphabet=ALPHABET[:4] + "cs \t=;\"'%é\x00\xff", max_size=12)
pairs = st.tuples(names, st.sampled_from(["=", "", "=="]), values).map("".join)
headers = st.lists(pairs, max_size=6).flatmap(
    lambda items: st.sampled_from(["; ", ";", " ; ", ";;"]).map(lambda sep: sep.join(items))
)


@FAST
@given(st.lists(headers, max_size=4))
def test_cookie_header_parsing_is_consistent_for_structured_headers(fields: list[str]) -> None:
    harness.check_cookie_headers(fields)


@FAST
@given(st.lists(st.text(), max_size=4))
def test_cookie_header_parsing_never_raises_for_any_text(fields: list[str]) -> None:
    harness.check_cookie_headers(fields)


def _genuine_tokens() -> list[tuple[Mode, str]]:
    out = []
    for seed in _seeds():
        mode = {1: Mode.AUTHENTICATED, 2: Mode.ENCRYPTED}.get(seed[0])
        if mode is not None and seed[1:].isascii():
            text = seed[1:].decode()
            opened = harness.CODECS[mode].open(text)
            if not hasattr(opened, "kind"):
                out.append((mode, text))
    return out


GENUINE = _genuine_tokens()


def test_the_seed_corpus_holds_genuine_tokens_of_both_modes() -> None:
    assert {mode for mode, _ in GENUINE} == {Mode.AUTHENTICATED, Mode.ENCRYPTED}
    assert len(GENUINE) >= 10


@settings(max_examples=600, deadline=None, derandomize=True)
@given(
    st.sampled_from(GENUINE),
    st.integers(0, 300),
    st.integers(0, 3),
    st.text(alphabet=ALPHABET + "=+/ ", max_size=3),
)
def test_no_edit_of_a_genuine_token_loads(genuine: tuple[Mode, str], at: int, cut: int, insert: str) -> None:
    mode, token = genuine
    at = min(at, len(token))
    edited = token[:at] + insert + token[at + cut :]
    loaded = harness.HANDLERS[mode].load_value(harness.ACCOUNT, edited, harness.NOW)
    if edited == token:
        return
    assert loaded.error is not None, (token, edited)
    assert loaded.state is None
    harness.check_token(mode, edited)


def test_every_seed_and_regression_input_passes_the_harness() -> None:
    """Deterministic replay of the committed corpus (which includes the inputs of past findings)."""
    for seed in sorted((FUZZ_DIR / "corpus").iterdir()):
        try:
            harness.check_one_input(seed.read_bytes())
        except Exception as exc:
            raise AssertionError(f"{seed.name}: {type(exc).__name__}: {str(exc)[:200]}") from exc
