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


def session_options(threads: int = 0, *, spin_wait: bool = True, memory_arena: bool = True) -> ort.SessionOptions:
    """Options of every session: `threads` = 0 uses every core for intra-op work.

    `spin_wait`: idle intra-op threads busy-wait for the next operator (onnxruntime's default). On a box whose
    cores are all busy (several workers, barcodes, other processes) that spinning takes CPU the real work needs.
    `memory_arena`: each session keeps the buffers of its largest run for good (onnxruntime's default); without
    it a run's buffers go back when it ends, so the detector's and the recognizer's peaks do not add up.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    # One inference at a time per session call: inter-op parallelism only adds thread contention here.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = memory_arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
    return options


def create_session(
    model_path: Path,
    *,
    threads: int = 0,
    enable_gpu: bool = False,
    spin_wait: bool = True,
    memory_arena: bool = True,
) -> ort.InferenceSession:
    """Load one model (see `session_options` for the knobs)."""
    disable_telemetry()
    options = session_options(threads, spin_wait=spin_wait, memory_arena=memory_arena)
    try:
        return ort.InferenceSession(str(model_path), sess_options=options, providers=select_providers(enable_gpu))
    except Exception as err:  # onnxruntime raises bare RuntimeError/Fail subclasses
        raise ModelError(f"cannot load model {model_path.name}: {err}") from err
