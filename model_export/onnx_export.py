"""ONNX export with optimum (encoder, decoder, decoder with past) and onnxruntime's dynamic int8 quantisation.

optimum also writes `decoder_model_merged.onnx`; it is not shipped: its MatMuls sit inside `If` subgraphs that
`quantize_dynamic` leaves in fp32, and the two separate decoder files do the same job.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

from model_export.errors import OnnxExportError, QuantizationError
from shared_models.bundle import FileRole

#: Bundle role -> the file optimum writes for it (the bundle keeps the names).
MODEL_FILES: dict[FileRole, str] = {
    "encoder": "encoder_model.onnx",
    "decoder": "decoder_model.onnx",
    "decoder_with_past": "decoder_with_past_model.onnx",
}
TASK = "image-to-text-with-past"
#: Weight-bearing ops quantised by default; Gather (the token embedding table) only on request, since it is the
#: largest single tensor of a TrOCR decoder but also the one most sensitive to rounding.
QUANTIZED_OPS = ["MatMul", "Gemm"]
EMBEDDING_OPS = ["Gather"]


def export_onnx(checkpoint: Path, out: Path, *, validate: bool = True) -> dict[FileRole, Path]:
    """Run optimum's exporter on a local checkpoint folder (no hub access); return role -> ONNX file."""
    try:
        from optimum.exporters.onnx import main_export
        from transformers.utils import logging as hf_logging
    except ImportError as err:
        raise OnnxExportError(
            "exporting needs the export extra: pip install 'zakpos-ocr[export]' (torch, transformers, optimum)"
        ) from err
    hf_logging.set_verbosity_error()
    logging.getLogger("optimum").setLevel(logging.ERROR)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # torch.jit tracer warnings about Python booleans in ViT/TrOCR: expected for a fixed-size encoder.
            warnings.simplefilter("ignore")
            main_export(
                str(checkpoint), out, task=TASK, local_files_only=True, do_validation=validate,
                library_name="transformers",
            )
    except Exception as err:  # optimum and torch.onnx raise many unrelated types
        raise OnnxExportError(f"optimum could not export {checkpoint}: {type(err).__name__}: {err}") from err
    files = {role: out / name for role, name in MODEL_FILES.items()}
    missing = [str(path.name) for path in files.values() if not path.is_file()]
    if missing:
        raise OnnxExportError(f"optimum did not write {', '.join(missing)} in {out}")
    return files


def quantize_int8(source: Path, target: Path, *, embeddings: bool = False) -> None:
    """Dynamic int8 quantisation of the weights (activations are quantised per call at run time)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise QuantizationError("quantising needs onnxruntime and onnx (the export extra)") from err
    target.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.addFilter(_skip_preprocess_advice)
    try:
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=QUANTIZED_OPS + (EMBEDDING_OPS if embeddings else []),
        )
    except Exception as err:  # onnx / onnxruntime raise bare exceptions
        raise QuantizationError(f"cannot quantise {source.name}: {type(err).__name__}: {err}") from err
    finally:
        root.removeFilter(_skip_preprocess_advice)


def _skip_preprocess_advice(record: logging.LogRecord) -> bool:
    """quantize_dynamic logs advice to run its shape-inference pre-pass on every call; it changes nothing for
    dynamic MatMul quantisation of these graphs, so keep it off the progress output."""
    return not str(record.msg).startswith("Please consider to run pre-processing")


def copy_model(source: Path, target: Path) -> None:
    """Ship an fp32 model as exported."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
