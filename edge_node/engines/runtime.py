"""The ONE place that builds onnxruntime sessions: threads, graph optimisation, providers, no telemetry."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import onnxruntime as ort

from edge_node.errors import ModelError

_LOGGER = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"

_telemetry_disabled = False


def disable_telemetry() -> None:
    """onnxruntime 1.32 looks up a Microsoft host after the first inference; an offline node must not."""
    global _telemetry_disabled
    if not _telemetry_disabled:
        ort.disable_telemetry_events()
        _telemetry_disabled = True


def select_providers(enable_gpu: bool) -> list[str]:
    """CUDA first when asked for and available, else CPU with a warning."""
    if not enable_gpu:
        return [CPU_PROVIDER]
    if CUDA_PROVIDER in ort.get_available_providers():
        return [CUDA_PROVIDER, CPU_PROVIDER]
    _LOGGER.warning("ENABLE_GPU is set but onnxruntime has no CUDA provider; running on the CPU")
    return [CPU_PROVIDER]


def create_session(model_path: Path, *, threads: int = 0, enable_gpu: bool = False) -> ort.InferenceSession:
    """Load one model; `threads` = 0 uses every core for intra-op work."""
    disable_telemetry()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    # One inference at a time per session call: inter-op parallelism only adds thread contention here.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(model_path), sess_options=options, providers=select_providers(enable_gpu))
    except Exception as err:  # onnxruntime raises bare RuntimeError/Fail subclasses
        raise ModelError(f"cannot load model {model_path.name}: {err}") from err
