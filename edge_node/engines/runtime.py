"""The ONE place that builds onnxruntime sessions: threads, graph optimisation, providers, memory, no telemetry.

Memory: a PP-OCR run needs large short-lived buffers (a receipt's detector run about 130 MB, a batch of wide lines
about 100 MB). With onnxruntime's default, each session keeps an arena of its own largest run for good, so the
detector's and the recognizer's peaks add up (node peak RSS 646 MB on the speed bench). Two leaner modes:

* `memory_arena=False` (the node's default): buffers come from malloc and go back after each run. glibc serves
  large blocks with mmap (returned to the system on free) only below a threshold that it raises after the first
  free, up to 32 MB; past that they stay in the heap. `limit_heap_growth` pins the threshold at 1 MB.
* `memory_arena=True`: one arena shared by every session (`session.use_env_allocators`), grown by what is asked
  (not to the next power of two): no page faults after warm-up, the peak is the largest run's rather than the sum.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from pathlib import Path

import onnxruntime as ort

from edge_node.errors import ModelError

_LOGGER = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
#: glibc mallopt parameter number and value: blocks of 1 MB and more are mmapped and returned when freed.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20
#: glibc mallopt: at most this many malloc arenas (default 8 per core). Every thread that allocates (workers,
#: onnxruntime's, barcodes, sqlite, MQTT) would otherwise get one, each keeping its own freed memory: measured on
#: the speed bench, 2 arenas keep about 25 MB less resident with no change in latency.
M_ARENA_MAX = -8
ARENA_MAX = 2
#: onnxruntime arena config: grow by the requested size (1) rather than to the next power of two (0).
ARENA_EXTEND_SAME_AS_REQUESTED = 1

_telemetry_disabled = False
_process_lock = threading.Lock()
_heap_limited = False
_shared_arena = False


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


def limit_heap_growth() -> bool:
    """Pin glibc's mmap threshold (once per process); False where there is no glibc (musl, macOS)."""
    global _heap_limited
    with _process_lock:
        if _heap_limited:
            return True
        try:
            libc = _libc()
            _heap_limited = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
            libc.mallopt(M_ARENA_MAX, ARENA_MAX)
        except (OSError, AttributeError):
            _heap_limited = False
        return _heap_limited


def trim_heap() -> None:
    """Hand freed heap memory back to the system (glibc `malloc_trim`); 10-30 ms on a fragmented heap, so only
    when idle. No-op where there is no glibc or the lean memory mode is off."""
    if not _heap_limited:
        return
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        return


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def share_cpu_arena() -> None:
    """Register one CPU arena for all sessions that opt in with `session.use_env_allocators` (once per process)."""
    global _shared_arena
    with _process_lock:
        if not _shared_arena:
            memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            ort.create_and_register_allocator(
                memory, ort.OrtArenaCfg({"arena_extend_strategy": ARENA_EXTEND_SAME_AS_REQUESTED})
            )
            _shared_arena = True


def session_options(threads: int = 0, *, spin_wait: bool = True, memory_arena: bool = True) -> ort.SessionOptions:
    """Options of every session: `threads` = 0 uses every core for intra-op work.

    `spin_wait`: idle intra-op threads busy-wait for the next operator (onnxruntime's default). On a box whose
    cores are all busy (several workers, barcodes, other processes) that spinning takes CPU the real work needs.
    `memory_arena`: True, the sessions share one arena (`share_cpu_arena` must have run); False, no arena at all
    (see the module docstring).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    # One inference at a time per session call: inter-op parallelism only adds thread contention here.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = memory_arena
    if memory_arena:
        options.add_session_config_entry("session.use_env_allocators", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
    return options


def create_session(
    model_path: Path,
    *,
    threads: int = 0,
    enable_gpu: bool = False,
    spin_wait: bool = True,
    memory_arena: bool = True,
    initializers: dict[str, ort.OrtValue] | None = None,
) -> ort.InferenceSession:
    """Load one model (see `session_options` for the knobs). `initializers` replace the model's weights of those
    names; the caller keeps them alive as long as the session."""
    disable_telemetry()
    if memory_arena:
        share_cpu_arena()
    else:
        limit_heap_growth()
    options = session_options(threads, spin_wait=spin_wait, memory_arena=memory_arena)
    for name, value in (initializers or {}).items():
        options.add_initializer(name, value)
    try:
        return ort.InferenceSession(str(model_path), sess_options=options, providers=select_providers(enable_gpu))
    except Exception as err:  # onnxruntime raises bare RuntimeError/Fail subclasses
        raise ModelError(f"cannot load model {model_path.name}: {err}") from err
