"""runtime.py: execution providers (GPU when present, CPU with a warning otherwise), session options, load errors."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort
import pytest

from edge_node.engines import runtime
from edge_node.engines.ppocr import bundled_model_dir
from edge_node.errors import ModelError

DETECTOR = bundled_model_dir() / "PP-OCRv6_det_small.onnx"


def test_cpu_only_when_the_gpu_is_not_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [runtime.CUDA_PROVIDER, runtime.CPU_PROVIDER])
    assert runtime.select_providers(enable_gpu=False) == [runtime.CPU_PROVIDER]


def test_cuda_first_when_asked_for_and_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [runtime.CUDA_PROVIDER, runtime.CPU_PROVIDER])
    assert runtime.select_providers(enable_gpu=True) == [runtime.CUDA_PROVIDER, runtime.CPU_PROVIDER]


def test_cpu_with_a_warning_when_asked_for_but_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [runtime.CPU_PROVIDER])
    with caplog.at_level(logging.WARNING, logger=runtime.__name__):
        assert runtime.select_providers(enable_gpu=True) == [runtime.CPU_PROVIDER]
    assert any("CUDA" in record.getMessage() and record.levelno == logging.WARNING for record in caplog.records)


def test_enable_gpu_without_cuda_still_loads_a_working_session(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """ENABLE_GPU=true on a box without onnxruntime-gpu: the node starts on the CPU and says so."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [runtime.CPU_PROVIDER])
    with caplog.at_level(logging.WARNING, logger=runtime.__name__):
        session = runtime.create_session(DETECTOR, threads=1, enable_gpu=True)
    assert session.get_providers() == [runtime.CPU_PROVIDER]
    assert caplog.records


def test_session_options_carry_threads_spinning_and_arena() -> None:
    lean = runtime.session_options(1, spin_wait=False, memory_arena=False)
    assert lean.intra_op_num_threads == 1
    assert lean.inter_op_num_threads == 1
    assert lean.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert lean.enable_cpu_mem_arena is False
    default = runtime.session_options()
    assert default.intra_op_num_threads >= 1  # 0 means every core
    assert default.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert default.enable_cpu_mem_arena is True
    assert default.get_session_config_entry("session.use_env_allocators") == "1"  # the one shared arena
    assert default.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_a_missing_model_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"cannot load model nothing\.onnx"):
        runtime.create_session(tmp_path / "nothing.onnx")


def test_telemetry_is_switched_off_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(runtime, "_telemetry_disabled", False)
    monkeypatch.setattr(ort, "disable_telemetry_events", lambda: calls.append(1))
    runtime.disable_telemetry()
    runtime.disable_telemetry()
    assert calls == [1]


def test_both_memory_modes_load_and_run() -> None:
    """Arena off (glibc's mmap threshold pinned) and the shared arena give the same detector output."""
    import numpy as np

    image = np.zeros((1, 3, 64, 64), dtype=np.float32)
    outputs = []
    for arena in (False, True):
        session = runtime.create_session(DETECTOR, threads=1, memory_arena=arena)
        outputs.append(session.run(None, {session.get_inputs()[0].name: image})[0])
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)
    assert runtime.limit_heap_growth() is True  # glibc here; idempotent
    runtime.share_cpu_arena()  # registering twice would raise inside onnxruntime: it must be a no-op
