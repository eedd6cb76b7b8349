"""Checking an uploaded bundle (central_sync/bundle_check.py) and packing / opening tars (bundle_archive.py):
signatures against trusted keys, altered files, unsafe names and links refused, and a stored tar that is the same
bytes every time, holds regular files only, and unpacks the way a node unpacks it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.bundle_archive import ARCHIVE_NAME, install, opened_upload, pack, unpack_upload
from central_sync.bundle_check import check_bundle, key_id, load_trusted_keys
from central_sync.errors import BundleInvalidError, BundleSignatureError, ConfigError
from tests.central_sync.bundles import FILES, make_bundle, new_key, sign, write_manifest


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_a_signed_bundle_is_verified_against_the_trusted_key(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    bundle = make_bundle(tmp_path / "b", key)
    _other, other_pub = new_key(tmp_path / "keys", "other")
    checked = check_bundle(bundle, [key.public_key()])
    assert checked.signature_verified and checked.key_id == key_id(key.public_key())
    assert (checked.manifest.name, checked.manifest.version, checked.label) == ("demo-trocr", "1.0.0",
                                                                                "demo-trocr@1.0.0")
    with pytest.raises(BundleSignatureError, match="not one of registry.trusted_keys"):
        check_bundle(bundle, load_trusted_keys([other_pub]))
    unverified = check_bundle(bundle, [])
    assert not unverified.signature_verified and unverified.key_id == key_id(key.public_key())


def test_unsigned_altered_and_resigned_bundles(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    unsigned = make_bundle(tmp_path / "unsigned", None)
    with pytest.raises(BundleSignatureError, match="not signed"):
        check_bundle(unsigned, [])
    bundle = make_bundle(tmp_path / "b", key)
    (bundle / "tokenizer.json").write_bytes(b'{"model": "swapped"}')
    with pytest.raises(BundleInvalidError, match="tokenizer.json .* bytes|tokenizer.json .* sha256"):
        check_bundle(bundle, [key.public_key()])
    write_manifest(bundle, "demo-trocr", "1.0.0")  # manifest follows the files, but the signature does not
    with pytest.raises(BundleSignatureError, match="does not match"):
        check_bundle(bundle, [key.public_key()])
    (bundle / "manifest.sig").write_text("{not json")
    with pytest.raises(BundleSignatureError, match="malformed"):
        check_bundle(bundle, [])


def test_unsafe_names_and_links_are_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    hidden = make_bundle(tmp_path / "hidden", key, extra={".secret": b"x"})
    with pytest.raises(BundleInvalidError, match="not a safe name"):
        check_bundle(hidden, [])
    dotted = make_bundle(tmp_path / "dotted", key, name="..")
    with pytest.raises(BundleInvalidError, match="must not start with a dot|should match pattern"):
        check_bundle(dotted, [])
    linked = make_bundle(tmp_path / "linked", key)
    outside = tmp_path / "outside.json"
    outside.write_bytes((linked / "tokenizer.json").read_bytes())
    (linked / "tokenizer.json").unlink()
    os.symlink(outside, linked / "tokenizer.json")
    with pytest.raises(BundleInvalidError, match="link"):
        check_bundle(linked, [])
    with pytest.raises(BundleInvalidError, match="neither a bundle folder"):
        check_bundle(tmp_path / "absent", [])


def test_a_bad_trusted_key_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="registry.trusted_keys"):
        load_trusted_keys([bad])


def test_packing_is_deterministic_and_holds_regular_files_only(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    bundle = make_bundle(tmp_path / "b", key)
    checked = check_bundle(bundle, [key.public_key()])
    first = pack(checked, tmp_path / "store")
    second = pack(checked, tmp_path / "store")
    assert first.path != second.path and first.path.name.startswith(".")
    assert (first.sha256, first.size) == (second.sha256, second.size)
    assert first.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()
    with tarfile.open(first.path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["manifest.json", "manifest.sig", *[path for path, _r, _d in FILES]]
    assert all(m.isreg() and m.mode == 0o644 and m.uid == 0 and m.uname == "" for m in members)
    install(first, tmp_path / "store" / ARCHIVE_NAME)
    assert (tmp_path / "store" / ARCHIVE_NAME).stat().st_size == first.size and not first.path.exists()
    # A node unpacks it the same way (tarfile's data filter) and gets the signed bundle back.
    out = tmp_path / "unpacked"
    with tarfile.open(tmp_path / "store" / ARCHIVE_NAME) as tar:
        tar.extractall(out, filter="data")
    assert check_bundle(out, [key.public_key()]).manifest == checked.manifest


def _tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def test_an_uploaded_tar_with_a_top_folder_opens_as_the_bundle(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    bundle = make_bundle(tmp_path / "demo", key)
    archive = tmp_path / "demo.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(bundle, arcname="demo")  # folders included, as `tar cf demo.tar demo/` writes them
    with opened_upload(archive, tmp_path / "scratch") as root:
        assert check_bundle(root, [key.public_key()]).manifest.name == "demo-trocr"
        opened = root
    assert not opened.exists(), "the unpacked upload is removed afterwards"
    with opened_upload(bundle, tmp_path / "scratch") as root:
        assert root == bundle


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([_file("manifest.json"), _file("../evil")], "not a safe name"),
        ([_file("manifest.json"), _file("/etc/evil")], "not a relative path"),
        ([_file("manifest.json"), _file("a\\b")], "not a relative path"),
        ([_file("manifest.json"), _file("manifest.json")], "appears twice"),
        ([_file("onnx/model.onnx")], f"no {'manifest.json'}"),
    ],
)
def test_unsafe_tars_are_refused(tmp_path: Path, entries: list[tuple[tarfile.TarInfo, bytes]], reason: str) -> None:
    archive = _tar(tmp_path / "bad.tar", entries)
    with pytest.raises(BundleInvalidError, match=reason):
        unpack_upload(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_links_and_devices_in_a_tar_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("tokenizer.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = _tar(tmp_path / "link.tar", [_file("manifest.json"), (link, None)])
    with pytest.raises(BundleInvalidError, match="link or device"):
        unpack_upload(archive, tmp_path / "out")
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    with pytest.raises(BundleInvalidError, match="link or device"):
        unpack_upload(_tar(tmp_path / "fifo.tar", [_file("manifest.json"), (fifo, None)]), tmp_path / "out2")
    not_tar = tmp_path / "junk.tar"
    not_tar.write_bytes(json.dumps({"not": "a tar"}).encode())
    with pytest.raises(BundleInvalidError, match="not a readable tar"):
        unpack_upload(not_tar, tmp_path / "out3")


def test_resigning_with_another_key_changes_the_signer(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    bundle = make_bundle(tmp_path / "b", key)
    other = Ed25519PrivateKey.generate()
    sign(bundle, other)
    assert check_bundle(bundle, [key.public_key(), other.public_key()]).key_id == key_id(other.public_key())
