"""Accuracy (and speed) benchmarks of the OCR pipeline over ``../shared/bench``; results go to docs/BENCHMARKS.md.

Run ``python -m bench accuracy --set NAME`` (see ``bench.__main__``).
"""
