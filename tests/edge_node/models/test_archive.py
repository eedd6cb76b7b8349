"""Unpacking a downloaded bundle tar: only plain files inside the folder, bounded size."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from edge_node.models.archive import unpack_bundle
from edge_node.models.errors import ModelUpdateError


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_plain_files_and_folders_are_unpacked(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "b.tar", [file_member("manifest.json", b"{}"),
                                            file_member("golden/0.png", b"png")])
    dest = unpack_bundle(archive, tmp_path / "out", max_bytes=1000)
    assert (dest / "manifest.json").read_bytes() == b"{}"
    assert (dest / "golden" / "0.png").read_bytes() == b"png"


@pytest.mark.parametrize("name", ["../evil", "/etc/evil", "a/../../evil", "a\\b"])
def test_names_leaving_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    archive = make_tar(tmp_path / "b.tar", [file_member("manifest.json", b"{}"), file_member(name, b"x")])
    with pytest.raises(ModelUpdateError, match="outside the bundle") as caught:
        unpack_bundle(archive, tmp_path / "out", max_bytes=1000)
    assert caught.value.stage == "unpack" and caught.value.permanent
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE])
def test_links_and_devices_are_refused(tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("model.onnx")
    info.type = kind
    info.linkname = "/etc/passwd"
    archive = make_tar(tmp_path / "b.tar", [(info, None)])
    with pytest.raises(ModelUpdateError, match="not a plain file"):
        unpack_bundle(archive, tmp_path / "out", max_bytes=1000)


def test_an_archive_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "b.tar", [file_member("big.onnx", b"x" * 2000)])
    with pytest.raises(ModelUpdateError, match="over the 1000 limit"):
        unpack_bundle(archive, tmp_path / "out", max_bytes=1000)


def test_a_file_that_is_no_tar_is_a_clear_error(tmp_path: Path) -> None:
    archive = tmp_path / "b.tar"
    archive.write_bytes(b"this is not a tar archive" * 40)
    with pytest.raises(ModelUpdateError, match="cannot unpack"):
        unpack_bundle(archive, tmp_path / "out", max_bytes=10_000)
    assert not (tmp_path / "out").exists()
