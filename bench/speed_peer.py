"""The peer OCR server of the speed benchmark: rapidocr-api (FastAPI + RapidOCR), in its own virtual environment.

``python -m bench speed --setup-peer`` creates ``bench/.peer-venv`` (git-ignored through a ``.gitignore`` inside
it) with ``python -m venv`` and pip-installs the pinned ``PEER_PACKAGES`` from the package index. The node's own
environment is never touched. Without that folder the benchmark reports the peer as "not installed".

``PeerProcess`` starts the server the way ``rapidocr_api -ip 127.0.0.1 -p PORT -workers 1`` does (uvicorn, one
worker, RapidOCR with its default settings), except that onnxruntime's telemetry is switched off first (it would
try to reach a Microsoft host; a benchmark here must stay on loopback) and the access log is quiet.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from bench.datasets import REPO_ROOT
from bench.node_process import free_port

PEER_VENV = REPO_ROOT / "bench" / ".peer-venv"
#: Pinned so every run compares against the same peer: the latest rapidocr-api, and the same rapidocr and
#: onnxruntime as the node (same PP-OCRv6 models, same runtime: only the serving differs).
PEER_PACKAGES = ("rapidocr-api==0.2.0", "rapidocr==3.10.0", "onnxruntime==1.32.0")
LAUNCH = (
    "import sys, onnxruntime; onnxruntime.disable_telemetry_events(); import uvicorn; "
    "uvicorn.run('rapidocr_api.main:app', host=sys.argv[1], port=int(sys.argv[2]), workers=1, "
    "log_level='warning', access_log=False)"
)


def peer_python(venv: Path = PEER_VENV) -> Path | None:
    """The peer environment's interpreter, when rapidocr-api is installed there."""
    python = venv / "bin" / "python"
    if python.exists() and (venv / "bin" / "rapidocr_api").exists():
        return python
    return None


def setup_commands(venv: Path = PEER_VENV) -> list[list[str]]:
    """The commands ``--setup-peer`` runs."""
    return [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", *PEER_PACKAGES],
    ]


def setup_peer(venv: Path = PEER_VENV) -> int:
    """Create the peer environment; returns the exit status."""
    for command in setup_commands(venv):
        print("+", " ".join(command))
        status = subprocess.call(command)
        if status != 0:
            print(f"peer setup failed ({status}); the benchmark will report the peer as not installed")
            return status
        (venv / ".gitignore").write_text("*\n", encoding="utf-8")  # keep the whole venv out of git
    print(f"rapidocr-api installed in {venv} ({', '.join(PEER_PACKAGES)}); `python -m bench speed` now runs it")
    return 0


class PeerProcess:
    """rapidocr-api on a free loopback port."""

    def __init__(self, python: Path, log_path: Path) -> None:
        self.python = python
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait until ``GET /`` answers; returns seconds to ready."""
        started = time.monotonic()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.python), "-c", LAUNCH, "127.0.0.1", str(self.port)], env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"peer exited with {self.process.returncode}: {self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/", timeout=1) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"peer not ready after {timeout} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL when it does not exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def __enter__(self) -> PeerProcess:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
