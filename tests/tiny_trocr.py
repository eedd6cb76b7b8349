"""A tiny TrOCR bundle built offline for the tests: model from configs, tokenizer trained locally, overfit on a
handful of rendered strings, exported through `model-export trocr --quantize int8`, signed with a fresh key.

Built once per test process (about 30-60 s on 2 cores: the optimum export is most of it) and shared by
tests/model_export and tests/edge_node/engines. The node's pipeline cuts line crops slightly differently from the
golden renders (detector margins, contrast stretch), and a model this small only reads the kinds of crops it was
trained on, so the training set also holds the crops the real pipeline cuts from `render_lines([text])`: they are
captured by running `run_image` with a recorder in place of the recognizer.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from support import encode, render_lines

from edge_node.engines.base import LineReading, TextDetector
from edge_node.engines.registry import EngineSet
from edge_node.pipeline.runner import run_image
from shared_models.ocr import OcrOptions

TEXTS = ["MILK 45", "TOTAL 120", "RICE 5KG", "TEA 30.50", "EGGS 12"]


@dataclass(frozen=True)
class TinyBundle:
    """Paths of the built checkpoint, the signed bundle and the keys."""

    checkpoint: Path
    bundle: Path
    private_key: Path
    public_key: Path
    other_public_key: Path
    train_seconds: float


class _Recorder:
    """Stands in for a recognizer and keeps the crops the pipeline hands it."""

    key = "trocr"
    languages = frozenset({"en", "bn"})

    def __init__(self) -> None:
        self.crops: list[np.ndarray] = []

    def recognize(self, crops: list[np.ndarray], language: str = "en") -> list[LineReading]:
        self.crops.extend(crops)
        return [LineReading("", 0.0) for _ in crops]


def pipeline_crops(detector: TextDetector, texts: list[str]) -> list[tuple[str, np.ndarray]]:
    """The crops `POST /ocr/process` would pass to the recognizer for an image of each text (one line each)."""
    samples = []
    for text in texts:
        recorder = _Recorder()
        engines = EngineSet(detector=detector, recognizers={"trocr": recorder},
                            primary={"en": "trocr", "bn": "trocr"}, fallback=None)
        run_image(encode(render_lines([text])), OcrOptions(extract_barcodes=False), engines)
        assert len(recorder.crops) == 1, f"the detector cut {text!r} into {len(recorder.crops)} pieces"
        samples.append((text, recorder.crops[0]))
    return samples


def _cli(*args: str) -> str:
    from model_export.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--quiet", *args])
    assert code == 0, f"model-export {args[0]} failed: {err.getvalue()}"
    return out.getvalue()


_built: dict[str, TinyBundle] = {}


def build(root: Path, detector: TextDetector) -> TinyBundle:
    """Build the checkpoint, export, keys and signature under `root` (once per process)."""
    if "bundle" in _built:
        return _built["bundle"]
    from model_export.synthetic import make_checkpoint

    crops = pipeline_crops(detector, TEXTS)
    checkpoint = root / "checkpoint"
    report = make_checkpoint(checkpoint, "tiny", TEXTS, extra_samples=crops)
    assert report is not None and report.loss < 0.05, report
    bundle = root / "bundle"
    golden = [arg for text in TEXTS for arg in ("--golden", text)]
    _cli("trocr", "--model", str(checkpoint), "--out", str(bundle), "--quantize", "int8", "--name", "tiny-trocr",
         "--version", "0.1.0", *golden)
    _cli("keygen", "--out", str(root / "keys"))
    _cli("keygen", "--out", str(root / "other-keys"))
    _cli("sign", "--key", str(root / "keys" / "bundle-signing.key"), str(bundle))
    _built["bundle"] = TinyBundle(
        checkpoint=checkpoint,
        bundle=bundle,
        private_key=root / "keys" / "bundle-signing.key",
        public_key=root / "keys" / "bundle-signing.pub",
        other_public_key=root / "other-keys" / "bundle-signing.pub",
        train_seconds=report.seconds,
    )
    return _built["bundle"]
