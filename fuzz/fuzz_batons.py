"""Coverage-guided fuzz target (atheris / libFuzzer) for baton parsing and ``Streams.resume``.

See ``baton_harness.py`` for the input layout and the checks. Usage (see README.md)::

    .venv/bin/python fuzz/fuzz_batons.py -max_total_time=600 WORK_DIR fuzz/corpus-batons
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["clientstate", "baton_harness"]):
    import baton_harness


def test_one_input(data: bytes) -> None:
    baton_harness.check_one_input(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
