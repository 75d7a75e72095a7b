"""clientstate benchmarks: codec and in-process request costs against peers and floors, in one run.

Run ``python bench/run.py`` (or ``python -m bench.run``); see ``bench/README.md``.
"""
