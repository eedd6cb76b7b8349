"""`edge-node ocr FILE...`: run the pipeline locally, one JSON result per line on stdout."""

from __future__ import annotations

import argparse
import json
import sys

from edge_node.config import EdgeConfig
from edge_node.engines.registry import build_engines
from edge_node.errors import EdgeError
from edge_node.pipeline.runner import run_image
from edge_node.worker import pipeline_limits
from shared_models.ocr import OcrOptions

#: Show a progress bar on stderr from this many files on.
PROGRESS_FROM = 3


def ocr_files(config: EdgeConfig, args: argparse.Namespace) -> int:
    """Exit 0 when every file was read, 1 when any failed (each failure is still printed as JSON)."""
    options = OcrOptions(type=args.type, language=args.language, confidence_threshold=args.confidence_threshold)
    engines = build_engines(config.ocr)
    limits = pipeline_limits(config)
    failures = 0
    total = len(args.files)
    for number, path in enumerate(args.files, start=1):
        record: dict[str, object] = {"file": str(path)}
        try:
            result = run_image(path.read_bytes(), options, engines, limits)
            record.update(success=True, result=result.model_dump(mode="json"))
        except OSError as err:
            failures += 1
            record.update(success=False, error={"code": "INVALID_IMAGE", "message": f"cannot read file: {err}"})
        except EdgeError as err:
            failures += 1
            record.update(success=False, error={"code": err.code.value, "message": err.message})
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        if total >= PROGRESS_FROM:
            _progress(number, total)
    return 1 if failures else 0


def _progress(done: int, total: int, width: int = 30) -> None:
    filled = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
