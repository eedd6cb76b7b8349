"""Where a price-tag request's time goes: pyinstrument over the pipeline called in-process.

``python -m bench speed --profile [--profile-tree DIR]`` builds the default engines, runs the first N price-tag
crops once to warm up, then ``PROFILE_PASSES`` more times under pyinstrument (sampling every 0.5 ms, main thread:
the request's own latency), and prints the mean ms per request spent under each part of the pipeline. A part is
counted once per call stack (the recognizer's onnxruntime run is inside "PP-OCR recognizer" and also shown on its
own as "onnxruntime run"). ``--profile-tree DIR`` runs the same in a subprocess whose working directory is DIR, so
that an older checkout's code is profiled (the "before" of a change).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROFILE_PASSES = 3
SAMPLE_INTERVAL_S = 0.0005
#: Function (or Class.function) -> the part of the pipeline it stands for.
PARTS = {
    "run_image": "whole request",
    "decode_image": "image decode",
    "read_barcodes": "barcodes (zxing-cpp + zbar)",
    "detect_rows": "text detection",
    "PpocrRecognizer.recognize": "PP-OCR recognizer",
    "InferenceSession.run": "onnxruntime run",
    "PpocrRecognizer._decode": "CTC decoding",
    "TesseractRecognizer.recognize": "Tesseract fallback",
    "extract_fields": "field extraction",
    "Future.result": "waiting for the barcode thread",
}


def _walk(frame: Any, seen: frozenset[str], totals: dict[str, float]) -> None:
    name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
    part = PARTS.get(name) or PARTS.get(frame.function)
    if part is not None and part not in seen:
        totals[part] = totals.get(part, 0.0) + frame.time
        seen = seen | {part}
    for child in frame.children:
        _walk(child, seen, totals)


def profile_in_process(data_dir: Path, count: int) -> dict[str, Any]:
    """Mean ms per price-tag request under each part of the pipeline, in this process."""
    from pyinstrument import Profiler

    from bench.datasets import load_price_crops
    from edge_node.config import load_config
    from edge_node.engines.registry import build_engines
    from edge_node.pipeline.runner import run_image
    from shared_models.ocr import DocumentType, OcrOptions

    engines = build_engines(load_config().ocr)
    images = [crop.image.read_bytes() for crop in load_price_crops(data_dir, count)]
    options = OcrOptions(type=DocumentType.PRODUCT)
    for data in images:
        run_image(data, options, engines)
    profiler = Profiler(interval=SAMPLE_INTERVAL_S)
    profiler.start()
    for _ in range(PROFILE_PASSES):
        for data in images:
            run_image(data, options, engines)
    profiler.stop()
    totals: dict[str, float] = {}
    root = profiler.last_session.root_frame() if profiler.last_session else None
    if root is not None:
        _walk(root, frozenset(), totals)
    requests = PROFILE_PASSES * len(images)
    per_request = {part: 1000 * seconds / requests for part, seconds in totals.items()}
    return {"requests": requests, "ms_per_request": dict(sorted(per_request.items(), key=lambda kv: -kv[1]))}


def profile_tree(tree: Path, data_dir: Path, count: int) -> dict[str, Any]:
    """The same in a subprocess that imports the code of ``tree`` (run as a script there, see the bottom)."""
    output = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(data_dir.resolve()), str(count)],
        cwd=tree, capture_output=True, text=True, check=True,
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("PROFILE "))
    result: dict[str, Any] = json.loads(line.removeprefix("PROFILE "))
    return result


def render(before: dict[str, Any] | None, after: dict[str, Any], label: str) -> str:
    """A Markdown table: ms per request under each part, after (and before, when given)."""
    parts = list(after["ms_per_request"])
    if before:
        parts += [p for p in before["ms_per_request"] if p not in parts]
    header = "| part of a price-tag request | " + ("before (ms) | " if before else "") + f"{label} (ms) |"
    rows = [header, "|---|" + ("---|" if before else "") + "---|"]
    for part in parts:
        now = after["ms_per_request"].get(part)
        cells = [f"{now:.1f}" if now is not None else "-"]
        if before:
            old = before["ms_per_request"].get(part)
            cells.insert(0, f"{old:.1f}" if old is not None else "-")
        rows.append(f"| {part} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # import the tree being profiled (the working directory), not this file's folder
    print("PROFILE " + json.dumps(profile_in_process(Path(sys.argv[1]), int(sys.argv[2]))))
