"""Price tags: exact price on single-tag crops, and multiset price P/R/F1 on whole shelf photos.

All images go through ``run_image`` with type=product.

* **Crops**: the predicted price is ``bench.normalize.prominent_price``: ``structured.price`` when the node
  returned one, else the number with the most digits on the tallest line box that holds a number (after NFKC and
  dropping ``¥``, ``円``, commas and spaces). Exact string match against the crop's ``.txt``.
* **Shelves**: the predicted prices are ``bench.normalize.shelf_prices``: every whitespace-separated token of the
  returned lines that is a bare price (1-5 digits once ``¥``, ``円`` and commas are dropped; a detector often
  merges a row of tags into one line). Matched as a multiset against ``prices.json``, counts summed over shelves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.accuracy import Calls, Goal, Metric, SetResult, first
from bench.datasets import load_price_crops, load_shelves
from bench.metrics import multiset_prf, ratio, sum_prf
from bench.normalize import prominent_price, shelf_prices
from shared_models.ocr import DocumentType, OcrOptions, OcrResult

CROP_ANCHOR = "raw PP-OCRv6 / Tesseract ≈ 98.5% (bench README)"


def crop_price(result: OcrResult | None) -> tuple[str | None, str]:
    """The predicted price of a crop and where it came from ('structured', 'lines' or 'none')."""
    if result is None:
        return None, "none"
    if result.structured.price is not None:
        return prominent_price([], result.structured.price), "structured"
    price = prominent_price([(line.text, line.bounding_box.height) for line in result.lines], None)
    return price, "lines" if price is not None else "none"


def evaluate_price_tags(data_dir: Path, calls: Calls, limit: int | None) -> SetResult:
    """Crops: exact price accuracy; shelves: price multiset P/R/F1."""
    crops = load_price_crops(data_dir)
    shelves = load_shelves(data_dir)
    chosen_crops = first(crops, limit)
    chosen_shelves = first(shelves, limit)
    options = OcrOptions(type=DocumentType.PRODUCT)
    correct = 0
    sources: dict[str, int] = {}
    items: list[dict[str, Any]] = []
    for crop in calls.track(chosen_crops, "price_tags crops"):
        result = calls.image(crop.name, crop.image.read_bytes(), options, crop.image.name, group="crop")
        price, source = crop_price(result)
        correct += price == crop.price
        sources[source] = sources.get(source, 0) + 1
        items.append({"name": crop.name, "kind": "crop", "gt": crop.price, "pred": price, "source": source})
    shelf_scores = []
    for shelf in calls.track(chosen_shelves, "price_tags shelves"):
        result = calls.image(shelf.name, shelf.image.read_bytes(), options, shelf.image.name, group="shelf")
        predicted = shelf_prices([line.text for line in result.lines]) if result else []
        shelf_scores.append(multiset_prf(predicted, shelf.prices))
        items.append(
            {
                "name": shelf.name,
                "kind": "shelf",
                "gt": list(shelf.prices),
                "pred": predicted,
                **shelf_scores[-1].as_dict(),
            }
        )
    shelves_total = sum_prf(shelf_scores)
    metrics = [
        Metric(
            "crop_accuracy", "crops: exact price", ratio(correct, len(chosen_crops)), "%", Goal(">=", 99.0), CROP_ANCHOR
        ),
        Metric("shelf_f1", "shelves: price F1 (multiset)", 100 * shelves_total.f1, ""),
        Metric("shelf_precision", "shelves: price precision", 100 * shelves_total.precision, ""),
        Metric("shelf_recall", "shelves: price recall", 100 * shelves_total.recall, ""),
    ]
    breakdown = {
        "crop_price_source": sources,
        "shelves": shelves_total.as_dict(),
        "shelves_evaluated": len(chosen_shelves),
    }
    n_items = len(chosen_crops) + len(chosen_shelves)
    notes = [
        f"{len(chosen_crops)} crops and {len(chosen_shelves)} shelves; crop price taken from: "
        + ", ".join(f"{source} {count}" for source, count in sorted(sources.items())),
        f"shelves: {shelves_total.matched} of {shelves_total.expected} tag prices found, "
        f"{shelves_total.predicted} predicted",
    ]
    total = len(crops) + len(shelves)
    return SetResult("price_tags", n_items, total, "crop", metrics, calls, breakdown, items, notes)
