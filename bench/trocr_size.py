"""TrOCR bundle sizes and per-line latency: ``python -m bench.trocr_size`` (needs the ``[export]`` extra).

For two TrOCR-architecture models built from configs (no weights can be downloaded here):

* ``tiny``: the test model (ViT 64/2 layers, decoder 64/2 layers, 32x160 input), trained on five strings;
* ``trocr-small-printed`` shape: DeiT-small encoder (384 hidden, 12 layers, 6 heads, 384x384, patch 16) and a TrOCR
  decoder (d_model 256, 6 layers, 8 heads, FFN 1024, vocabulary 64044), random weights, 61.6M parameters;

it exports each once with optimum, builds fp32, int8 and (for the small shape) int8+embeddings bundles with
``model-export``'s own code, signs them, loads them the way a node does (``load_trocr``: verify, sessions,
self-test) and times ``recognize([one line crop])`` with 1 and 2 onnxruntime intra-op threads (median of
``RUNS``). The random-weight model is given ``max_length`` ``STEPS + 1`` and so decodes ``STEPS`` tokens per line,
about what a 20-character receipt line costs; the encoder alone is timed too. The section ``trocr`` of
docs/BENCHMARKS.md is rewritten (bench.report.update_docs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bench.report import DOCS_PATH, update_docs
from bench.sets import SETS
from edge_node.engines.runtime import create_session
from edge_node.engines.trocr_onnx import TrocrConfig, load_trocr, preprocess
from model_export.golden import render_line
from model_export.onnx_export import export_onnx
from model_export.progress import Progress
from model_export.signing import keygen, sign_bundle
from model_export.synthetic import make_checkpoint
from model_export.trocr import TrocrExport, export_trocr

SECTION = "trocr"
TEXTS = ["MILK 45", "TOTAL 120", "RICE 5KG", "TEA 30.50", "EGGS 12"]
RUNS = 20
STEPS = 16
LINE = "TOTAL 45.50"
THREADS = (1, 2)
COMMAND = "python -m bench.trocr_size"


@dataclass
class Variant:
    """One bundle of one shape, and what it measured."""

    shape: str
    quantization: str
    sizes: dict[str, int]
    load_s: float
    line_ms: dict[int, tuple[float, float]]
    encoder_ms: dict[int, tuple[float, float]]
    tokens: int


def _interleaved_ms(calls: dict[int, Callable[[], object]], runs: int = RUNS) -> dict[int, tuple[float, float]]:
    """Median and best (ms) of `runs` calls of each callable after one warm-up, taken in turns so that every
    thread count meets the same background load."""
    times: dict[int, list[float]] = {key: [] for key in calls}
    for call in calls.values():
        call()
    for _ in range(runs):
        for key, call in calls.items():
            start = time.perf_counter()
            call()
            times[key].append((time.perf_counter() - start) * 1000)
    return {key: (statistics.median(values), min(values)) for key, values in times.items()}


def _measure(shape: str, quantization: str, bundle: Path, public_key: Path) -> Variant:
    crop = np.asarray(render_line(LINE if shape != "tiny" else TEXTS[1]))
    recognizers, load_s = {}, 0.0
    for threads in THREADS:
        start = time.perf_counter()
        recognizers[threads] = load_trocr(TrocrConfig(bundle_dir=bundle, trusted_keys=(public_key,), threads=threads))
        load_s = time.perf_counter() - start
    manifest = recognizers[1].bundle.manifest
    pixels = preprocess(crop, manifest.input)[np.newaxis]
    encoders = {t: create_session(bundle / "encoder_model.onnx", threads=t) for t in THREADS}
    line_ms = _interleaved_ms({t: partial(r.recognize, [crop]) for t, r in recognizers.items()})
    encoder_ms = _interleaved_ms({t: partial(e.run, None, {"pixel_values": pixels}) for t, e in encoders.items()})
    tokens = len(recognizers[1].generate([crop])[0].ids)
    sizes = {f.path: f.size for f in manifest.files if f.role != "golden"}
    return Variant(shape, quantization, sizes, load_s, line_ms, encoder_ms, tokens)


def _variants(shape: str, root: Path, public_key: Path, private_key: Path) -> tuple[int, list[Variant]]:
    import torch

    checkpoint = root / shape / "checkpoint"
    make_checkpoint(checkpoint, shape, TEXTS, fit=shape == "tiny")
    from transformers import VisionEncoderDecoderModel

    parameters = sum(p.numel() for p in VisionEncoderDecoderModel.from_pretrained(checkpoint).parameters())
    torch.set_num_threads(2)
    onnx_dir = root / shape / "onnx"
    with Progress(1).step(f"{shape}: optimum export"):
        export_onnx(checkpoint, onnx_dir, validate=False)
    quantizations = ["none", "int8"] + (["int8+embeddings"] if shape != "tiny" else [])
    variants = []
    for quantization in quantizations:
        bundle = root / shape / quantization
        export_trocr(TrocrExport(
            model=str(checkpoint), out=bundle, onnx_dir=onnx_dir, quantize="none" if quantization == "none" else "int8",
            quantize_embeddings=quantization == "int8+embeddings", name=f"bench-{shape}", version="0",
            golden=tuple(TEXTS[:2]), max_length=64 if shape == "tiny" else STEPS + 1,
        ))
        sign_bundle(bundle, private_key)
        variants.append(_measure(shape, quantization, bundle, public_key))
    return parameters, variants


def _pair(timing: tuple[float, float]) -> str:
    """`median (best)` in ms."""
    return f"{timing[0]:.1f} ({timing[1]:.1f})"


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f}" if size < 10e6 else f"{size / 1e6:.1f}"


def render(results: dict[str, tuple[int, list[Variant]]], load: tuple[float, float]) -> str:
    """The Markdown body of the section; `load` is the 1-minute load average before and after the run."""
    lines = [
        "### trocr: TrOCR bundles (model-export), sizes and per-line latency",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC} on this 2-core machine (1-minute load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after: other work shares the cores); command: `{COMMAND}` "
        "(definitions in `bench/trocr_size.py`). Models are built from configs (no hub access here): `tiny` is "
        "the test model trained on five strings; `trocr-small-printed` has that model's shape with random weights, "
        f"so it decodes a fixed {STEPS} tokens per line. Latency: `recognize([one line crop])` and the encoder "
        f"session alone, median (best) of {RUNS} in ms, after load (signature + sha256 check, sessions, self-test; "
        "`load s`). The best run is the figure closest to an idle box.",
        "",
        "| model (parameters) | weights | encoder MB | decoder MB | decoder-with-past MB | tokens/line | "
        "encoder ms 1 / 2 threads | line ms 1 / 2 threads | load s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, (parameters, variants) in results.items():
        for v in variants:
            lines.append(
                f"| {shape} ({parameters / 1e6:.1f}M) | {v.quantization} | {_mb(v.sizes['encoder_model.onnx'])} | "
                f"{_mb(v.sizes['decoder_model.onnx'])} | {_mb(v.sizes['decoder_with_past_model.onnx'])} | "
                f"{v.tokens} | {_pair(v.encoder_ms[1])} / {_pair(v.encoder_ms[2])} | "
                f"{_pair(v.line_ms[1])} / {_pair(v.line_ms[2])} | {v.load_s:.2f} |"
            )
    lines += [
        "",
        "- Accuracy of the real `microsoft/trocr-small-printed` weights cannot be measured here (no hub access). "
        "On a machine with the checkpoint: `model-export trocr --model microsoft/trocr-small-printed --out "
        "BUNDLE --quantize int8`, `model-export keygen --out KEYS`, `model-export sign --key KEYS/bundle-signing.key "
        "BUNDLE`, then `EDGE_OCR__PRIMARY=trocr EDGE_OCR__TROCR_BUNDLE=BUNDLE "
        "EDGE_OCR__TRUSTED_KEYS=KEYS/bundle-signing.pub python -m bench accuracy --set sroie-lines` (the in-process "
        "backend reads `EDGE_*` variables; the anchor is TrOCR-Small's 95.82 word F1 on SROIE).",
        "- The parameter count is that of a model built from trocr-small-printed's published config (DeiT-small "
        "encoder as a ViT of the same sizes, untied output projection); sizes and latency follow the shape, not "
        "the weights. Thread counts are onnxruntime intra-op threads per session (`ocr.onnx_threads`); each thread "
        "count was timed in turns with the other, so both met the same background load; when another process holds "
        "a core, a 2-thread session waits for it and its median can exceed the 1-thread one.",
        "- The merged decoder is not shipped (quantize_dynamic leaves its `If` subgraphs in fp32). `int8+embeddings` "
        "(`--quantize-embeddings`) also quantises the token-embedding Gather, the largest tensor of the decoder.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure both shapes and rewrite the docs section."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", type=Path, default=DOCS_PATH, help="BENCHMARKS.md to update")
    parser.add_argument("--shape", action="append", choices=["tiny", "trocr-small-printed"], help="default: both")
    args = parser.parse_args(argv)
    results: dict[str, tuple[int, list[Variant]]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="zakpos-trocr-bench-") as tmp:
        root = Path(tmp)
        private_key, public_key = keygen(root / "keys")
        for shape in args.shape or ["tiny", "trocr-small-printed"]:
            results[shape] = _variants(shape, root, public_key, private_key)
    body = render(results, (load_before, os.getloadavg()[0]))
    print(body)
    update_docs(args.docs, SECTION, body, [*SETS, "queue", SECTION])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
