"""Bundle tars: packing a checked bundle folder into the tar central stores and serves, and opening an uploaded tar.

The stored tar is what nodes download (edge_node/models/archive.py unpacks it): uncompressed (the ONNX files do
not compress, and Range requests address plain bytes), regular files only (no folder, link or device entries),
`manifest.json` then `manifest.sig` then the manifest's files in its order, under their manifest paths
(`golden/00.png` keeps its folder). The headers are fixed (mode 0644, owner 0, mtime the manifest's created_at),
so the same bundle always packs to the same bytes and the same sha256: re-uploading it is recognised as a no-op.

An uploaded tar is treated as hostile: only plain files and folders, safe names (central_sync.bundle_check
`safe_member_name`), no duplicates, a bounded total size. A tar holding one top-level folder is accepted too
(`tar cf b.tar bundle/`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from central_sync.bundle_check import HASH_CHUNK, CheckedBundle, safe_member_name
from central_sync.errors import BundleInvalidError
from shared_models.bundle import MANIFEST_NAME, SIGNATURE_NAME

#: The stored tar's name inside storage_dir/NAME/VERSION/.
ARCHIVE_NAME = "bundle.tar"
#: An uploaded tar that unpacks to more than this is refused (int8 TrOCR bundles are 50-250 MB).
MAX_UNPACKED_BYTES = 4 << 30
FILE_MODE = 0o644


@dataclass(frozen=True)
class PackedArchive:
    """A tar written next to its final place, not yet moved there."""

    path: Path
    sha256: str
    size: int


class _HashingReader:
    """Reads a file for tarfile while hashing exactly the bytes that go into the tar."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self.digest.update(chunk)
        return chunk


def _mtime(created_at: str) -> int:
    try:
        return max(0, int(datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()))
    except ValueError:
        return 0


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(safe_member_name(name))
    info.size, info.mtime, info.mode, info.type = size, mtime, FILE_MODE, tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _write_tar(bundle: CheckedBundle, handle: IO[bytes]) -> None:
    mtime = _mtime(bundle.manifest.created_at)
    with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in (MANIFEST_NAME, SIGNATURE_NAME):
            path = bundle.root / name
            with path.open("rb") as source:
                tar.addfile(_info(name, path.stat().st_size, mtime), source)
        for entry in bundle.manifest.files:
            with (bundle.root / entry.path).open("rb") as source:
                reader = _HashingReader(source)
                tar.addfile(_info(entry.path, entry.size, mtime), reader)
            if reader.digest.hexdigest() != entry.sha256:
                raise BundleInvalidError(f"{entry.path} in {bundle.root} changed while it was being packed")


def pack(bundle: CheckedBundle, folder: Path) -> PackedArchive:
    """Write the bundle's tar as a hidden partial file in `folder`; the caller moves it into place (`install`)."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{ARCHIVE_NAME}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with partial.open("wb") as handle:
            _write_tar(bundle, handle)
            handle.flush()
            os.fsync(handle.fileno())
        digest = hashlib.sha256()
        with partial.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return PackedArchive(path=partial, sha256=digest.hexdigest(), size=partial.stat().st_size)


def install(packed: PackedArchive, final: Path) -> None:
    """Atomically move a packed tar to its final path (readers see the old file or the whole new one)."""
    os.replace(packed.path, final)
    descriptor = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def discard(packed: PackedArchive) -> None:
    """Remove a packed tar that is not needed (the same content is stored already, or the upload failed)."""
    packed.path.unlink(missing_ok=True)


def _member_name(member: tarfile.TarInfo) -> str:
    name = member.name.removeprefix("./").rstrip("/")
    if member.name.startswith("/") or "\\" in member.name:
        raise BundleInvalidError(f"tar entry {member.name!r} is not a relative path inside the bundle")
    return safe_member_name(name)


def _strip_top_folder(names: list[str]) -> str:
    """'' when manifest.json is at the top of the tar, else the one top-level folder that holds it."""
    if MANIFEST_NAME in names:
        return ""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1:
        top = tops.pop()
        if f"{top}/{MANIFEST_NAME}" in names:
            return top + "/"
    raise BundleInvalidError(
        f"the tar holds no {MANIFEST_NAME} at its top level nor inside one top-level folder: it is not a bundle"
    )


def _files(tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, str]]:
    total = 0
    seen: set[str] = set()
    for member in tar.getmembers():
        name = _member_name(member) if member.name not in (".", "./") else ""
        if member.isdir():
            continue
        if not member.isfile():
            raise BundleInvalidError(f"tar entry {member.name!r} is a link or device; a bundle holds plain files")
        if name in seen:
            raise BundleInvalidError(f"tar entry {name!r} appears twice")
        seen.add(name)
        total += member.size
        if total > MAX_UNPACKED_BYTES:
            raise BundleInvalidError(f"the tar unpacks to more than {MAX_UNPACKED_BYTES} bytes")
        yield member, name


def unpack_upload(archive: Path, dest: Path) -> Path:
    """Unpack an uploaded bundle tar into the new folder `dest`; returns the bundle's root inside it."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            files = list(_files(tar))
            prefix = _strip_top_folder([name for _member, name in files])
            dest.mkdir(parents=True)
            for member, name in files:
                if not name.startswith(prefix):
                    raise BundleInvalidError(f"tar entry {name!r} is outside the bundle folder {prefix}")
                target = dest / name.removeprefix(prefix)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - isfile() members always have a stream
                    raise BundleInvalidError(f"tar entry {name!r} cannot be read")
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, HASH_CHUNK)
    except (tarfile.TarError, EOFError) as err:
        raise BundleInvalidError(f"{archive} is not a readable tar: {err}") from err
    except OSError as err:
        raise BundleInvalidError(f"cannot unpack {archive}: {err}") from err
    return dest


@contextlib.contextmanager
def opened_upload(source: Path, scratch: Path) -> Iterator[Path]:
    """The bundle folder of an upload: `source` itself when it is a folder, else its tar unpacked under `scratch`."""
    if source.is_dir():
        yield source
        return
    if not source.is_file():
        raise BundleInvalidError(f"{source} does not exist")
    dest = scratch / f".upload-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        yield unpack_upload(source, dest)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
