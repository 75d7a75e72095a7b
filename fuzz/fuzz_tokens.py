"""Coverage-guided fuzz target (atheris / libFuzzer) for clientstate's input-facing code.

Covers ``Cookie`` header parsing, opening tokens in both modes (``TokenCodec.open``,
``peek``, ``ClientStored.load`` through ``RequestCookies`` and ``Binding``) and
``b64url_decode``; see ``harness.py`` for the input layout and the checks.

Usage (see README.md)::

    .venv/bin/python fuzz/fuzz_tokens.py -dict=fuzz/cookie.dict -max_total_time=3600 WORK_DIR fuzz/corpus

Any uncaught exception or failed check makes libFuzzer stop with a crash
report and write the input to ``crash-<sha1>`` (see ``-artifact_prefix``).
"""

from __future__ import annotations

import sys

import atheris

# Only clientstate and the harness are instrumented for coverage; msgspec and
# cryptography are compiled extensions and stay as they are.
with atheris.instrument_imports(include=["clientstate", "harness"]):
    import harness


def test_one_input(data: bytes) -> None:
    harness.check_one_input(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
