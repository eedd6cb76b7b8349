"""Storage faults on a real server process: a read-only data directory, a full disk, SIGKILL in the middle of writes.

Read-only: root ignores file permissions, and a read-only remount (`unshare -m` + `mount -o remount,bind,ro`) is
refused with EBUSY while SQLite holds its files open for writing. So the test sets the immutable attribute
(`chattr +i`, which root cannot bypass, checked even on open file descriptors) on the data directory, the image
folder, the database and its WAL while the node runs, and clears it afterwards. The node must answer 503
SERVICE_UNAVAILABLE, keep its workers, corrupt nothing, and serve again once the disk is writable.
In both storage faults /health answers 503 `unhealthy` with `storage.writable: false` and the reason while the
fault lasts, and `healthy` again once it is removed (its storage probe is cached for a few seconds: polled).

Full disk: the node runs in its own mount namespace with its data directory on a small tmpfs; the test fills it
(through /proc/PID/root) and frees it again.

SIGKILL: 20 kills of one node, each landing while uploads are being accepted and jobs completed. After each kill
the SQLite file passes `PRAGMA integrity_check`; in the end every job answered 202 exists and completes, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from edge_process import EdgeProcess
from support import encode, render_lines

#: Kills of the SIGKILL test (the issue asks for 20), shared by this many nodes running side by side.
KILLS = 20
KILLERS = 2
UPLOADS_PER_ROUND = 4
Query = Callable[[str], list[tuple[Any, ...]]]
#: Room for the database, its WAL and a few images; the test fills the rest.
TMPFS_MB = 16
#: /health reuses its storage probe for 5 s (edge_node/store/probe.py); this leaves room on a busy machine.
HEALTH_WAIT_SECONDS = 30.0


def _skip_or_fail(reason: str) -> None:
    """A missing capability skips with the reason; under CI=true it fails (DESIGN §10: never silently skip)."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _needs_immutable_files(folder: Path) -> None:
    probe = folder / "chattr-probe"
    probe.write_bytes(b"x")
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(probe)]).returncode != 0:
        _skip_or_fail("needs chattr +i (root with CAP_LINUX_IMMUTABLE on ext4/xfs/btrfs)")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    probe.unlink()


def _needs_mount_namespaces() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        _skip_or_fail("needs root with unshare")
    if subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"]).returncode != 0:
        _skip_or_fail("mount namespaces with tmpfs are not permitted here")


def _images(count: int, prefix: str) -> list[bytes]:
    return [encode(render_lines([f"{prefix} {n}", f"Tk {n}.25"], size=26)) for n in range(count)]


async def _post(session: aiohttp.ClientSession, node: EdgeProcess, path: str, image: bytes,
                role: str = "clerk") -> tuple[int, dict[str, Any]]:
    data = aiohttp.FormData()
    data.add_field("image", image, filename="x.png")
    headers = {"Authorization": f"Bearer {node.token(role=role)}"}
    async with session.post(f"{node.url}{path}", data=data, headers=headers) as response:
        return response.status, await response.json()


def _request(node: EdgeProcess, method: str, path: str, role: str = "admin") -> tuple[int, dict[str, Any]]:
    async def call() -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.request(
                method, f"{node.url}{path}", headers={"Authorization": f"Bearer {node.token(role=role)}"}) as response:
            return response.status, await response.json(content_type=None)

    return asyncio.run(call())


def _local(path: Path) -> Query:
    """Queries on the node's database file, from this process."""

    def query(sql: str) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
            return list(conn.execute(sql).fetchall())

    return query


def _inside(pid: int, path: Path) -> Query:
    """Queries run in the node's mount namespace: SQLite resolves a /proc/PID/root path back into ours."""
    script = "import json, sqlite3, sys; print(json.dumps(sqlite3.connect(sys.argv[1], timeout=10)" \
             ".execute(sys.argv[2]).fetchall()))"

    def query(sql: str) -> list[tuple[Any, ...]]:
        out = subprocess.run(["nsenter", "-t", str(pid), "-m", sys.executable, "-c", script, str(path), sql],
                             check=True, capture_output=True, text=True).stdout
        return [tuple(row) for row in json.loads(out)]

    return query


def _integrity(query: Query) -> str:
    return str(query("PRAGMA integrity_check")[0][0])


def _statuses(query: Query) -> dict[str, str]:
    return {job_id: status for job_id, status in query("SELECT id, status FROM ocr_processing_jobs")}


def _result_job_ids(query: Query) -> list[str]:
    """The job of each `results` outbox row (one per completed job when each outcome is written once)."""
    return sorted(json.loads(payload)["job_id"] for (payload,) in query(
        "SELECT payload FROM outbox WHERE kind = 'results'"))


def _wait_for(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError("condition not met in time")


def _storage_fault(node: EdgeProcess, query: Query, fail: Callable[[], None], repair: Callable[[], None]) -> None:
    """Jobs done, jobs in flight, then `fail()`: uploads and admin writes get 503, reads still work; `repair()`:
    the node serves again without a restart and the in-flight jobs complete, each exactly once."""
    before, in_flight = _images(3, "BEFORE"), _images(4, "FLIGHT")

    async def until_failure() -> tuple[list[str], list[str], list[tuple[int, dict[str, Any]]]]:
        async with aiohttp.ClientSession() as session:
            done = [body["data"]["id"] for _s, body in await asyncio.gather(
                *(_post(session, node, "/api/v1/ocr/process", image) for image in before))]
            queued = await asyncio.gather(*(_post(session, node, "/api/v1/ocr/process/async", image)
                                            for image in in_flight))
            fail()  # the workers are still busy with the queued jobs
            refused = [await _post(session, node, path, _images(1, "REFUSED")[0])
                       for path in ("/api/v1/ocr/process", "/api/v1/ocr/process/async")]
            return done, [body["data"]["job_id"] for _s, body in queued], refused

    done, flying, refused = asyncio.run(until_failure())
    for status, body in refused:
        assert status == 503, body
        assert body["success"] is False and body["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert "Traceback" not in json.dumps(body)
    assert _request(node, "DELETE", f"/api/v1/ocr/jobs/{done[0]}")[0] == 503
    assert _request(node, "GET", f"/api/v1/ocr/jobs/{done[0]}/image")[0] == 503  # no read without its audit row
    assert _request(node, "GET", f"/api/v1/ocr/jobs/{done[0]}", role="clerk")[0] == 200  # reads still work
    sick = _wait_for_health(node, 503)
    assert sick["success"] is False and sick["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert sick["data"]["status"] == "unhealthy" and sick["data"]["storage"]["writable"] is False
    assert sick["data"]["storage"]["error"] and "Traceback" not in json.dumps(sick)
    time.sleep(1.0)  # the workers meet the failing disk for a while
    repair()
    well = _wait_for_health(node, 200, status="healthy")
    assert well["data"]["storage"] == {"writable": True, "free_bytes": well["data"]["storage"]["free_bytes"],
                                       "error": None}
    assert well["data"]["storage"]["free_bytes"] > 0
    status, body = asyncio.run(_post_once(node, _images(1, "AFTER")[0]))
    assert status == 200 and body["data"]["text"], body
    _wait_for(lambda: all(_statuses(query).get(job) == "completed" for job in flying), 60)
    assert _integrity(query) == "ok"
    statuses = _statuses(query)
    assert len(statuses) == len(before) + len(in_flight) + 1  # the refused uploads left no half-written rows
    assert set(statuses.values()) == {"completed"}
    assert _result_job_ids(query) == sorted(statuses)  # one outcome each, none doubled by the retried writes


def _health(node: EdgeProcess) -> tuple[int, dict[str, Any]]:
    async def call() -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.get(f"{node.url}/api/v1/health") as response:
            return response.status, await response.json()

    return asyncio.run(call())


def _wait_for_health(node: EdgeProcess, http_status: int, status: str | None = None,
                     seconds: float = HEALTH_WAIT_SECONDS) -> dict[str, Any]:
    """Poll /health until it answers `http_status` (and `status`); its body then. Fails with the last answer."""
    deadline = time.monotonic() + seconds
    answer: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() < deadline:
        answer = _health(node)
        if answer[0] == http_status and (status is None or answer[1]["data"]["status"] == status):
            return answer[1]
        time.sleep(0.25)
    raise AssertionError(f"/health did not answer {http_status} {status or ''} in {seconds} s: {answer}")


async def _post_once(node: EdgeProcess, image: bytes) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        return await _post(session, node, "/api/v1/ocr/process", image)


def test_read_only_data_dir_gives_503_and_corrupts_nothing(tmp_path: Path) -> None:
    _needs_immutable_files(tmp_path)
    data_dir = tmp_path / "node"
    node = EdgeProcess(data_dir, EDGE_WORKER__LEASE_SECONDS="2", EDGE_WORKER__POLL_INTERVAL_SECONDS="0.2")
    db_path = data_dir / "edge.sqlite3"
    # Not the -shm file: SQLite maps it into memory, and it is an index SQLite rebuilds anyway.
    frozen = [data_dir, data_dir / "images", db_path, data_dir / "edge.sqlite3-wal"]

    def chattr(flag: str) -> None:
        subprocess.run(["chattr", flag, *map(str, frozen)], check=True)

    node.start()
    try:
        _storage_fault(node, _local(db_path), lambda: chattr("+i"), lambda: chattr("-i"))
    finally:
        subprocess.run(["chattr", "-i", *map(str, frozen)], capture_output=True)
        node.kill()
    assert _integrity(_local(db_path)) == "ok"  # and after a kill on top of it


def test_full_disk_gives_503_and_corrupts_nothing(tmp_path: Path) -> None:
    _needs_mount_namespaces()
    data_dir = (tmp_path / "node").resolve()
    data_dir.mkdir()
    mount = f'mount -t tmpfs -o size={TMPFS_MB}m tmpfs "$0" && exec "$@"'
    node = EdgeProcess(data_dir, wrapper=["unshare", "-m", "sh", "-c", mount, str(data_dir)],
                       EDGE_WORKER__LEASE_SECONDS="2", EDGE_WORKER__POLL_INTERVAL_SECONDS="0.2")
    node.start()
    assert node.process is not None
    inside = Path(f"/proc/{node.process.pid}/root") / data_dir.relative_to("/")  # the tmpfs, seen from here
    filler = inside / "filler"

    def fill() -> None:
        with open(filler, "wb") as handle, contextlib.suppress(OSError):  # until ENOSPC: full
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()

    try:
        _storage_fault(node, _inside(node.process.pid, data_dir / "edge.sqlite3"), fill, filler.unlink)
    finally:
        node.kill()  # the tmpfs goes with the node's mount namespace


def _kill_repeatedly(node: EdgeProcess, kills: int, seed: int) -> set[str]:
    """Start, upload a burst, SIGKILL at a random moment of it, check the file; `kills` times. Returns the ids
    of the jobs answered 202 (a cut-off upload was never acknowledged, so never promised)."""
    query = _local(node.data_dir / "edge.sqlite3")
    rng = random.Random(seed)
    images = _images(UPLOADS_PER_ROUND, f"KILL{seed}")
    accepted: set[str] = set()

    async def round_with_kill() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            uploads = [asyncio.create_task(_post(session, node, "/api/v1/ocr/process/async", image))
                       for image in images]
            await asyncio.sleep(rng.uniform(0.02, 0.35))
            node.kill()
            for outcome in await asyncio.gather(*uploads, return_exceptions=True):
                if not isinstance(outcome, BaseException) and outcome[0] == 202:
                    accepted.add(outcome[1]["data"]["job_id"])

    for number in range(kills):
        node.start()
        asyncio.run(round_with_kill())
        assert _integrity(query) == "ok", f"{node.data_dir}: kill {number + 1}"
        missing = accepted - set(_statuses(query))
        assert not missing, f"{node.data_dir}: kill {number + 1}: accepted jobs lost: {missing}"
    return accepted


def test_sigkill_during_writes_20_times_loses_no_accepted_job(tmp_path: Path) -> None:
    # Two nodes killed 10 times each, side by side: 20 kills in half the time (a restart is most of a round).
    nodes = [EdgeProcess(tmp_path / f"node-{n}", EDGE_OCR__ONNX_THREADS="2") for n in range(KILLERS)]
    try:
        with ThreadPoolExecutor(KILLERS) as pool:
            accepted = list(pool.map(_kill_repeatedly, nodes, [KILLS // KILLERS] * KILLERS, range(KILLERS)))
        for node, ids in zip(nodes, accepted, strict=True):
            assert len(ids) >= KILLS // KILLERS, f"only {len(ids)} uploads accepted: the kills came too early"
            node.start()
            query = _local(node.data_dir / "edge.sqlite3")
            _wait_for(lambda q=query, ids=ids: all(_statuses(q).get(j) == "completed" for j in ids), 120)
    finally:
        for node in nodes:
            node.kill()
    for node, ids in zip(nodes, accepted, strict=True):
        query = _local(node.data_dir / "edge.sqlite3")
        assert _integrity(query) == "ok"
        statuses = _statuses(query)
        assert ids <= set(statuses) and set(statuses.values()) == {"completed"}
        assert _result_job_ids(query) == sorted(statuses)  # each job's outcome written exactly once
