"""Unpacking a downloaded bundle tar into a folder, refusing anything but plain files and folders inside it.

The tar comes from central and is checked against the announced sha256 before it is opened, but it is still
treated as hostile: absolute names, `..`, links, devices and FIFOs are refused before anything is written, and
the total unpacked size is bounded by `max_bytes`. Only then is the bundle's own signature checked (bundle.py).
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath

from edge_node.models.errors import ModelUpdateError


def _unsafe(member: tarfile.TarInfo) -> str | None:
    """Why a member may not be unpacked, or None."""
    name = PurePosixPath(member.name)
    if member.name.startswith("/") or name.is_absolute() or ".." in name.parts or "\\" in member.name:
        return "a path outside the bundle"
    if not (member.isfile() or member.isdir()):
        return "not a plain file or folder"
    return None


def unpack_bundle(archive: Path, dest: Path, *, max_bytes: int) -> Path:
    """Unpack `archive` into the new folder `dest` (removed again on any failure); returns `dest`."""
    if dest.exists():
        shutil.rmtree(dest)
    try:
        with tarfile.open(archive, mode="r:") as tar:
            members = tar.getmembers()
            total = 0
            for member in members:
                reason = _unsafe(member)
                if reason is not None:
                    raise ModelUpdateError(f"bundle archive entry {member.name!r} is {reason}",
                                           stage="unpack", permanent=True)
                total += member.size
            if total > max_bytes:
                raise ModelUpdateError(f"bundle archive unpacks to {total} bytes, over the {max_bytes} limit",
                                       stage="unpack", permanent=True)
            dest.mkdir(parents=True)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as err:
        shutil.rmtree(dest, ignore_errors=True)
        raise ModelUpdateError(f"cannot unpack the bundle archive: {err}", stage="unpack",
                               permanent=isinstance(err, tarfile.TarError)) from err
    except ModelUpdateError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest
