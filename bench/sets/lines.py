"""Single-line recognition sets: scene-text word crops and synthetic Bengali lines, both through ``run_line``.

* ``scene_text`` (type=product): the prediction is the line's text, trimmed. Word accuracy case-sensitive (exact
  string equality with the case-sensitive label), and in the standard case-blind alphanumeric form
  (``bench.metrics.alnum_fold``: lower-case, keep only ``[0-9a-z]``; the headline). ``1 - NED``: one minus the mean
  normalised edit distance, on the raw strings and on the folded ones. Also per source set (IIIT5K, SVT).
* ``bengali_lines`` (language=bn): both sides go through ``bench.metrics.normalize_bengali`` (NFC, ``|`` read as
  the danda ``।``, whitespace trimmed and collapsed; the ground truth's trailing newline is already stripped by the
  loader). CER = summed character edit distance / summed ground-truth characters; WER likewise over
  whitespace-split words; plus the share of lines read exactly.
"""

from __future__ import annotations

from pathlib import Path

from bench.accuracy import Calls, Goal, Metric, SetResult, first
from bench.datasets import TextCrop, load_bengali_lines, load_scene_text
from bench.images import load_rgb
from bench.metrics import alnum_fold, error_rate, normalize_bengali, normalized_edit_distance, ratio
from shared_models.ocr import DocumentType, Language, OcrOptions

SCENE_ANCHOR = "raw PP-OCRv6 ≈ 95% (bench README)"


def _read_all(crops: list[TextCrop], calls: Calls, options: OcrOptions, label: str) -> list[str]:
    """Recognise each crop as one line; '' for a failed call."""
    predictions = []
    for crop in calls.track(crops, label):
        line = calls.line(crop.name, load_rgb(crop.image), options)
        predictions.append(line.text.strip() if line else "")
    return predictions


def _scene_scores(pairs: list[tuple[str, str]]) -> dict[str, float]:
    n = len(pairs)
    exact = sum(pred == gt for pred, gt in pairs)
    folded = sum(alnum_fold(pred) == alnum_fold(gt) for pred, gt in pairs)
    ned = sum(normalized_edit_distance(pred, gt) for pred, gt in pairs)
    ned_folded = sum(normalized_edit_distance(alnum_fold(pred), alnum_fold(gt)) for pred, gt in pairs)
    return {
        "images": n,
        "accuracy_case_sensitive": ratio(exact, n),
        "accuracy_case_blind_alnum": ratio(folded, n),
        "one_minus_ned": 100 * (1 - ned / n) if n else 0.0,
        "one_minus_ned_case_blind_alnum": 100 * (1 - ned_folded / n) if n else 0.0,
    }


def evaluate_scene_text(data_dir: Path, calls: Calls, limit: int | None) -> SetResult:
    """Word accuracy (case-sensitive and case-blind alphanumeric) and 1 - NED."""
    crops = load_scene_text(data_dir)
    chosen = first(crops, limit)
    predictions = _read_all(chosen, calls, OcrOptions(type=DocumentType.PRODUCT), "scene_text")
    pairs = [(pred, crop.text) for pred, crop in zip(predictions, chosen, strict=True)]
    scores = _scene_scores(pairs)
    per_source = {
        source: _scene_scores([pair for pair, crop in zip(pairs, chosen, strict=True) if crop.source_set == source])
        for source in sorted({crop.source_set for crop in chosen})
    }
    metrics = [
        Metric(
            "accuracy_case_blind_alnum",
            "word accuracy, case-blind alphanumeric",
            scores["accuracy_case_blind_alnum"],
            "%",
            Goal(">=", 96.5),
            SCENE_ANCHOR,
        ),
        Metric("accuracy_case_sensitive", "word accuracy, case-sensitive", scores["accuracy_case_sensitive"]),
        Metric("one_minus_ned", "1 - NED, case-sensitive", scores["one_minus_ned"], ""),
        Metric(
            "one_minus_ned_case_blind_alnum",
            "1 - NED, case-blind alphanumeric",
            scores["one_minus_ned_case_blind_alnum"],
            "",
        ),
    ]
    items = [{"name": crop.name, "gt": crop.text, "pred": pred} for crop, pred in zip(chosen, predictions, strict=True)]
    notes = [
        "per source (case-blind alphanumeric / case-sensitive): "
        + ", ".join(
            f"{source} {row['accuracy_case_blind_alnum']:.2f}% / {row['accuracy_case_sensitive']:.2f}% "
            f"of {row['images']}"
            for source, row in per_source.items()
        )
    ]
    breakdown = {"per_source": per_source}
    return SetResult("scene_text", len(chosen), len(crops), "line", metrics, calls, breakdown, items, notes)


def evaluate_bengali_lines(data_dir: Path, calls: Calls, limit: int | None) -> SetResult:
    """CER and WER after NFC and danda normalisation."""
    lines = load_bengali_lines(data_dir)
    chosen = first(lines, limit)
    predictions = _read_all(chosen, calls, OcrOptions(language=Language.BN), "bengali_lines")
    pairs = [
        (normalize_bengali(pred), normalize_bengali(crop.text)) for pred, crop in zip(predictions, chosen, strict=True)
    ]
    cer = error_rate(pairs, "char")
    wer = error_rate(pairs, "word")
    exact = sum(pred == gt for pred, gt in pairs)
    metrics = [
        Metric("cer", "CER (NFC, | = ।)", 100 * cer.rate, "%", Goal("<=", 3.0)),
        Metric("wer", "WER (NFC, | = ।)", 100 * wer.rate, "%"),
        Metric("line_accuracy", "lines read exactly", ratio(exact, len(chosen))),
    ]
    breakdown = {"char_edits": cer.edits, "chars": cer.reference, "word_edits": wer.edits, "words": wer.reference}
    items = [{"name": crop.name, "gt": gt, "pred": pred} for crop, (pred, gt) in zip(chosen, pairs, strict=True)]
    return SetResult("bengali_lines", len(chosen), len(lines), "line", metrics, calls, breakdown, items)
