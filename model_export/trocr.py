"""`model-export trocr`: a TrOCR checkpoint -> an unsigned bundle folder the node's `trocr` engine loads.

Steps: find the checkpoint -> optimum ONNX export (encoder, decoder, decoder with past) -> int8 quantisation (or
fp32 copies) -> tokenizer.json -> golden lines rendered and read by the finished bundle through the node's own
engine -> manifest.json. The bundle is built in a staging folder and appears at `out` only when complete; sign it
with `model-export sign` before a node will load it.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from edge_node.engines.bundle import VerifiedBundle
from edge_node.engines.trocr_onnx import TrocrRecognizer
from model_export.bundle_writer import file_entry, staged_output, write_manifest
from model_export.checkpoint import CheckpointInfo, read_checkpoint, resolve_checkpoint
from model_export.errors import CheckpointError, GoldenError
from model_export.golden import DEFAULT_GOLDEN, write_golden
from model_export.onnx_export import MODEL_FILES, TASK, copy_model, export_onnx, quantize_int8
from model_export.progress import Progress
from model_export.tokenizer import export_tokenizer
from shared_models.bundle import BundleFile, BundleManifest, DecoderSpec, FileRole, GoldenCase

_LOGGER = logging.getLogger(__name__)
TOKENIZER_FILE = "tokenizer.json"
STEPS = 6


@dataclass(frozen=True)
class TrocrExport:
    """What to export and how."""

    model: str
    out: Path
    quantize: Literal["none", "int8"] = "none"
    quantize_embeddings: bool = False
    name: str | None = None
    version: str | None = None
    languages: tuple[str, ...] = ("en",)
    max_length: int = 64
    golden: tuple[str, ...] = DEFAULT_GOLDEN
    golden_font: Path | None = None
    strict_golden: bool = False
    force: bool = False
    validate: bool = True
    onnx_dir: Path | None = None
    threads: int = 0


@dataclass(frozen=True)
class GoldenReading:
    """One golden line: what was rendered and what the bundle read."""

    image: str
    source_text: str
    read: str
    confidence: float


@dataclass(frozen=True)
class ExportResult:
    """The finished bundle."""

    out: Path
    manifest: BundleManifest
    golden: list[GoldenReading] = field(default_factory=list)


def _default_name(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(source.rstrip("/")).name).strip("-") or "trocr"


def _models(options: TrocrExport, info: CheckpointInfo, staging: Path, progress: Progress) -> list[BundleFile]:
    with tempfile.TemporaryDirectory(prefix="model-export-onnx-") as scratch:
        onnx_dir = options.onnx_dir
        if onnx_dir is None:
            with progress.step(f"exporting {info.source} to ONNX with optimum"):
                export_onnx(info.folder, Path(scratch), validate=options.validate)
            onnx_dir = Path(scratch)
        else:
            progress.note(f"reusing the ONNX export in {onnx_dir}")
        label = "quantising to int8" + (" (embeddings too)" if options.quantize_embeddings else "")
        with progress.step(label if options.quantize == "int8" else "copying the fp32 models"):
            entries = []
            for role, name in MODEL_FILES.items():
                source = onnx_dir / name
                if not source.is_file():
                    raise CheckpointError(f"{source} is missing: export with --task {TASK} (optimum-cli)")
                if options.quantize == "int8":
                    quantize_int8(source, staging / name, embeddings=options.quantize_embeddings)
                else:
                    copy_model(source, staging / name)
                entries.append(file_entry(staging, name, role))
                progress.note(f"{name}: {source.stat().st_size / 1e6:.1f} MB -> {entries[-1].size / 1e6:.1f} MB")
    return entries


def _read_golden(staging: Path, manifest: BundleManifest, threads: int) -> list[GoldenReading]:
    """Read each golden image alone with the node's engine on the finished (not yet signed) bundle."""
    import numpy as np
    from PIL import Image

    recognizer = TrocrRecognizer(VerifiedBundle(staging, manifest, key_id="unsigned"), threads=threads)
    readings = []
    for case in manifest.golden:
        line = recognizer.recognize([np.asarray(Image.open(staging / case.image).convert("RGB"))])[0]
        readings.append(GoldenReading(case.image, case.source_text, line.text, line.confidence))
    return readings


def export_trocr(options: TrocrExport, progress: Progress | None = None) -> ExportResult:
    """Run every step; the bundle appears at `options.out` only when complete."""
    progress = progress or Progress(STEPS - (options.onnx_dir is not None))
    if options.quantize_embeddings and options.quantize != "int8":
        raise CheckpointError("--quantize-embeddings needs --quantize int8")
    with progress.step(f"reading the checkpoint {options.model}"):
        info = read_checkpoint(resolve_checkpoint(options.model), options.model)
    max_length = min(options.max_length, info.max_positions)
    with staged_output(options.out, force=options.force) as staging:
        files = _models(options, info, staging, progress)
        with progress.step("writing tokenizer.json"):
            vocab = export_tokenizer(info.folder, staging / TOKENIZER_FILE)
            files.append(file_entry(staging, TOKENIZER_FILE, "tokenizer"))
            if vocab > info.vocab_size:
                progress.note(f"the tokenizer has {vocab} tokens but the model only {info.vocab_size}")
        with progress.step(f"reading {len(options.golden)} golden lines with the exported bundle"):
            images = write_golden(staging, options.golden, font=options.golden_font)
            golden_role: FileRole = "golden"
            files.extend(file_entry(staging, image, golden_role) for image in images)
            manifest = BundleManifest(
                name=options.name or _default_name(info.source),
                version=options.version or datetime.now(UTC).strftime("%Y.%m.%d-%H%M%S"),
                engine="trocr",
                languages=list(options.languages),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                source=info.source,
                quantization="none" if options.quantize == "none"
                else ("int8+embeddings" if options.quantize_embeddings else "int8"),
                input=info.input,
                decoder=DecoderSpec(
                    start_token_id=info.start_token_id, eos_token_id=info.eos_token_id,
                    pad_token_id=info.pad_token_id, max_length=max_length, vocab_size=info.vocab_size,
                ),
                files=files,
                golden=[GoldenCase(image=i, source_text=t, expected="") for i, t in zip(images, options.golden,
                                                                                        strict=True)],
            )
            readings = _read_golden(staging, manifest, options.threads)
            misread = [r for r in readings if r.read != r.source_text]
            for reading in misread:
                progress.note(f"golden {reading.image}: rendered {reading.source_text!r}, read {reading.read!r}")
            if misread and options.strict_golden:
                raise GoldenError(f"the exported model misreads {len(misread)} of {len(readings)} golden lines")
        with progress.step("writing manifest.json"):
            manifest = manifest.model_copy(
                update={"golden": [GoldenCase(image=r.image, source_text=r.source_text, expected=r.read)
                                   for r in readings]}
            )
            write_manifest(staging, BundleManifest.model_validate(manifest.model_dump()))
    return ExportResult(out=options.out, manifest=manifest, golden=readings)
