"""SROIE receipts: ground-truth line crops (``sroie-lines``) and whole receipts with key fields (``sroie``).

* ``sroie-lines``: every ground-truth line is cut from its scan (``bench.images.crop_quad``) and recognised with
  ``run_line`` (type=receipt). Words are matched as a multiset per receipt and summed over receipts
  (``bench.metrics.word_prf``): case-blind (both sides upper-cased; the headline, since SROIE transcripts are upper
  case) and exact-case. Line CER = summed edit distance over summed ground-truth characters, both ways.
* ``sroie``: each scan goes through ``run_image`` (type=receipt). The same word match runs over the predicted
  lines' text (``result.text`` when there are no lines) against all ground-truth transcripts. Fields: date
  (both sides to ISO with ``bench.normalize.parse_date``), total (``parse_amount``, cents), company vs
  ``structured.merchant`` and address vs ``structured.address`` (``normalize_name``: upper-cased, whitespace
  collapsed), each an exact match. ICDAR task-3 P/R/F1: the (field, normalised value) pairs the node returned
  (non-empty ones) against the 4 ground-truth pairs, as a multiset match summed over receipts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.accuracy import Calls, Goal, Metric, SetResult, first
from bench.datasets import Receipt, load_sroie
from bench.images import crop_quad, load_rgb
from bench.metrics import PRF, error_rate, multiset_prf, ratio, sum_prf, word_prf
from bench.normalize import normalize_name, parse_amount, parse_date
from shared_models.ocr import DocumentType, OcrOptions, OcrResult, StructuredFields

LINES_ANCHOR = "TrOCR-Small 95.82, Base 96.34, Large 96.58 (arXiv 2109.10282, Table 3); raw PP-OCRv6 ≈ 88"
RECEIPT_ANCHOR = "raw PP-OCRv6 det+rec ≈ 87, Tesseract ≈ 68 (bench README)"
FIELDS = ("company", "date", "address", "total")


def _word_metrics(blind: PRF, exact: PRF, goal: Goal, anchor: str) -> list[Metric]:
    return [
        Metric("word_f1_case_blind", "word F1, case-blind", 100 * blind.f1, "", goal, anchor),
        Metric("word_precision_case_blind", "word precision, case-blind", 100 * blind.precision, ""),
        Metric("word_recall_case_blind", "word recall, case-blind", 100 * blind.recall, ""),
        Metric("word_f1_exact_case", "word F1, exact case", 100 * exact.f1, ""),
    ]


def evaluate_sroie_lines(data_dir: Path, calls: Calls, limit: int | None) -> SetResult:
    """Recognise every ground-truth line crop as one line; word P/R/F1 per receipt, line CER."""
    receipts = load_sroie(data_dir)
    chosen = first(receipts, limit)
    options = OcrOptions(type=DocumentType.RECEIPT)
    blind: list[PRF] = []
    exact: list[PRF] = []
    pairs: list[tuple[str, str]] = []
    items: list[dict[str, Any]] = []
    confidences: list[tuple[float, bool]] = []
    for receipt in calls.track(chosen, "sroie-lines"):
        page = load_rgb(receipt.image)
        predictions = []
        for index, gt in enumerate(receipt.lines):
            crop = crop_quad(page, gt.quad)
            line = calls.line(f"{receipt.name}#{index}", crop, options) if crop is not None else None
            predictions.append(line.text.strip() if line else "")
            if line is not None:
                confidences.append((line.confidence, predictions[-1].upper() == gt.text.strip().upper()))
        gt_text = "\n".join(gt.text for gt in receipt.lines)
        pred_text = "\n".join(predictions)
        blind.append(word_prf(pred_text, gt_text, case_blind=True))
        exact.append(word_prf(pred_text, gt_text, case_blind=False))
        pairs.extend(zip(predictions, (gt.text for gt in receipt.lines), strict=True))
        items.append(
            {
                "name": receipt.name,
                "word_f1_case_blind": 100 * blind[-1].f1,
                "lines": [{"gt": gt.text, "pred": pred} for gt, pred in zip(receipt.lines, predictions, strict=True)],
            }
        )
    cer_exact = error_rate(pairs, "char")
    cer_blind = error_rate(((pred.upper(), gt.upper()) for pred, gt in pairs), "char")
    metrics = [
        *_word_metrics(sum_prf(blind), sum_prf(exact), Goal(">=", 96.0), LINES_ANCHOR),
        Metric("line_cer_case_blind", "line CER, case-blind", 100 * cer_blind.rate),
        Metric("line_cer_exact_case", "line CER, exact case", 100 * cer_exact.rate),
        *_calibration_metrics(field_confidence_buckets(confidences), "lines"),
    ]
    breakdown = {
        "words_case_blind": sum_prf(blind).as_dict(),
        "words_exact_case": sum_prf(exact).as_dict(),
        "lines": len(pairs),
        "line_confidence": field_confidence_buckets(confidences),
    }
    notes = [f"{len(pairs)} line crops from {len(chosen)} receipts"]
    return SetResult("sroie-lines", len(chosen), len(receipts), "line", metrics, calls, breakdown, items, notes)


def _result_text(result: OcrResult | None) -> str:
    """The predicted text: the lines when there are any, else the flat text."""
    if result is None:
        return ""
    return "\n".join(line.text for line in result.lines) if result.lines else result.text


_NORMALISERS: dict[str, Callable[[Any], Any]] = {
    "date": parse_date,
    "total": parse_amount,
    "company": lambda value: normalize_name(value) or None,
    "address": lambda value: normalize_name(value) or None,
}


def predicted_fields(structured: StructuredFields) -> dict[str, Any]:
    """The node's answer for each SROIE field, normalised (None when absent or unreadable)."""
    raw = {
        "company": structured.merchant,
        "date": structured.date,
        "address": structured.address,
        "total": structured.total,
    }
    return {name: _NORMALISERS[name](value) for name, value in raw.items()}


def score_fields(gt: dict[str, str], structured: StructuredFields) -> tuple[dict[str, bool], PRF, dict[str, Any]]:
    """Per-field exact match, the task-3 pair match, and the normalised predictions (for the report)."""
    predicted = predicted_fields(structured)
    expected = {name: _NORMALISERS[name](gt[name]) for name in FIELDS}
    correct = {name: predicted[name] is not None and predicted[name] == expected[name] for name in FIELDS}
    pairs = multiset_prf(
        (f"{name}={predicted[name]}" for name in FIELDS if predicted[name] is not None),
        (f"{name}={expected[name]}" for name in FIELDS),
    )
    return correct, pairs, {name: None if value is None else str(value) for name, value in predicted.items()}


#: The node's field names for the SROIE fields (for their confidences).
_NODE_FIELD = {"company": "merchant", "date": "date", "address": "address", "total": "total"}
#: The request's default confidence threshold: a calibrated confidence is right more often above it.
CONFIDENCE_SPLIT = 0.8


def _calibration_metrics(buckets: dict[str, dict[str, float]], unit: str) -> list[Metric]:
    return [
        Metric(f"{unit}_{name}_conf_accuracy", f"{unit} with confidence {sign} {CONFIDENCE_SPLIT}: right "
               f"({buckets[name]['fields']:.0f})", buckets[name]["accuracy"], "%")
        for name, sign in (("high", ">="), ("low", "<"))
    ]


def field_confidence_buckets(records: list[tuple[float, bool]]) -> dict[str, dict[str, float]]:
    """Accuracy of predicted fields with confidence >= CONFIDENCE_SPLIT versus below (is it calibrated?)."""
    buckets: dict[str, dict[str, float]] = {}
    for name, keep in (("high", lambda c: c >= CONFIDENCE_SPLIT), ("low", lambda c: c < CONFIDENCE_SPLIT)):
        chosen = [ok for confidence, ok in records if keep(confidence)]
        buckets[name] = {"fields": len(chosen), "accuracy": ratio(sum(chosen), len(chosen))}
    return buckets


def evaluate_sroie(data_dir: Path, calls: Calls, limit: int | None) -> SetResult:
    """Whole receipts: word P/R/F1 over all text, the four key fields, task-3 P/R/F1."""
    receipts: list[Receipt] = load_sroie(data_dir)
    chosen = first(receipts, limit)
    options = OcrOptions(type=DocumentType.RECEIPT)
    blind: list[PRF] = []
    exact: list[PRF] = []
    task3: list[PRF] = []
    items: list[dict[str, Any]] = []
    hits = dict.fromkeys(FIELDS, 0)
    confidences: list[tuple[float, bool]] = []
    for receipt in calls.track(chosen, "sroie"):
        result = calls.image(receipt.name, receipt.image.read_bytes(), options, receipt.image.name)
        pred_text = _result_text(result)
        gt_text = "\n".join(gt.text for gt in receipt.lines)
        blind.append(word_prf(pred_text, gt_text, case_blind=True))
        exact.append(word_prf(pred_text, gt_text, case_blind=False))
        correct, pairs, shown = score_fields(receipt.fields, result.structured if result else StructuredFields())
        task3.append(pairs)
        for name, ok in correct.items():
            hits[name] += ok
            confidence = result.structured.confidence.get(_NODE_FIELD[name]) if result else None
            if confidence is not None and shown[name] is not None:
                confidences.append((confidence, ok))
        items.append(
            {
                "name": receipt.name,
                "word_f1_case_blind": 100 * blind[-1].f1,
                "fields_gt": receipt.fields,
                "fields_pred": shown,
                "fields_correct": correct,
            }
        )
    n = len(chosen)
    pairs_total = sum_prf(task3)
    buckets = field_confidence_buckets(confidences)
    metrics = [
        *_word_metrics(sum_prf(blind), sum_prf(exact), Goal(">=", 92.0), RECEIPT_ANCHOR),
        Metric("date_accuracy", "date exact", ratio(hits["date"], n), "%", Goal(">=", 90.0)),
        Metric("total_accuracy", "total exact", ratio(hits["total"], n), "%", Goal(">=", 90.0)),
        Metric("company_accuracy", "company exact", ratio(hits["company"], n), "%", Goal(">=", 80.0)),
        Metric("address_accuracy", "address exact", ratio(hits["address"], n), "%"),
        Metric("task3_f1", "ICDAR task-3 F1 (field pairs)", 100 * pairs_total.f1, ""),
        Metric("task3_precision", "ICDAR task-3 precision", 100 * pairs_total.precision, ""),
        Metric("task3_recall", "ICDAR task-3 recall", 100 * pairs_total.recall, ""),
        *_calibration_metrics(buckets, "fields"),
    ]
    breakdown = {
        "words_case_blind": sum_prf(blind).as_dict(),
        "words_exact_case": sum_prf(exact).as_dict(),
        "task3_pairs": pairs_total.as_dict(),
        "field_hits": hits,
        "field_confidence": buckets,
    }
    return SetResult("sroie", n, len(receipts), "image", metrics, calls, breakdown, items)
