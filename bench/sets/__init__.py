"""The benchmark sets, by CLI name, in the order ``all`` runs them and docs/BENCHMARKS.md lists them."""

from __future__ import annotations

from bench.accuracy import Evaluator
from bench.sets.barcodes import evaluate_barcodes
from bench.sets.lines import evaluate_bengali_lines, evaluate_scene_text
from bench.sets.price_tags import evaluate_price_tags
from bench.sets.sroie import evaluate_sroie, evaluate_sroie_lines

SETS: dict[str, Evaluator] = {
    "sroie-lines": evaluate_sroie_lines,
    "sroie": evaluate_sroie,
    "barcodes": evaluate_barcodes,
    "price_tags": evaluate_price_tags,
    "scene_text": evaluate_scene_text,
    "bengali_lines": evaluate_bengali_lines,
}

#: What one call of each set's main group is, for the docs' timing column.
CALL_UNITS: dict[str, str] = {
    "sroie-lines": "line crop",
    "sroie": "receipt",
    "barcodes": "image",
    "price_tags": "tag crop",
    "scene_text": "word crop",
    "bengali_lines": "line",
}

__all__ = ["CALL_UNITS", "SETS"]
