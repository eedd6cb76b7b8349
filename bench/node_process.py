"""Run a real `edge-node serve` process (for benchmarks and integration tests), and talk to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from edge_node.auth import issue_token

SECRET = "integration-secret-that-is-long-enough!!"
SHOP = "shop-int"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EdgeProcess:
    """`python -m edge_node serve` on a free port with its own data dir; kill/restart like a power cut."""

    def __init__(self, data_dir: Path, workers: int = 2, wrapper: Sequence[str] = (), **env: str) -> None:
        self.data_dir = data_dir
        self.wrapper = list(wrapper)  # a command the server is started under, e.g. `unshare -m ...`
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "EDGE_JWT_SECRET": SECRET,
            "EDGE_SHOP_ID": SHOP,
            "EDGE_WORKER__WORKERS": str(workers),
            # Bursts from one test user measure the queue, not the rate limiter (tests of it pass limits in env).
            "EDGE_RATE_LIMIT_USER_PER_MIN": "0",
            "EDGE_RATE_LIMIT_SHOP_PER_HOUR": "0",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"edge-{self.port}.log"

    def token(self, user: str = "clerk", role: str = "clerk") -> str:
        return issue_token(SECRET, user_id=user, shop_id=SHOP, ttl_seconds=3600, role=role)

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait until /health answers; returns seconds to healthy."""
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*self.wrapper, sys.executable, "-m", "edge_node", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"edge node exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=1) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"edge node not healthy after {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no cleanup runs, like pulling the plug."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> EdgeProcess:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.kill()
