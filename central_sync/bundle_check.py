"""Checking an uploaded bundle folder before the registry stores it: the signature file, the manifest, every file.

Nodes verify again after the download (edge_node/engines/bundle.py: signature against their own trusted keys,
then each file's sha256); central refuses at upload what every node would refuse later. The format is the same:
`manifest.sig` is `{"algorithm": "Ed25519", "key_id": "...", "signature": "<base64 over manifest.json>"}` and a
key id is the first 16 hex digits of the SHA-256 of the raw public key.

With `registry.trusted_keys` set, the signature must verify against one of them. Without, only its form is
checked (an operator who keeps the public keys on the nodes alone), and the row records `signature_verified`
false. The files are always checked: their presence, that they are plain files inside the folder, size, sha256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from central_sync.errors import BundleInvalidError, BundleSignatureError, ConfigError
from shared_models.bundle import MANIFEST_NAME, MANIFEST_SCHEMA_VERSION, SIGNATURE_NAME, BundleManifest

SIGNATURE_ALGORITHM = "Ed25519"
#: Files are hashed in chunks of this size (decoders are 40-160 MB).
HASH_CHUNK = 1 << 20
#: One segment of a file name inside a bundle: no leading dot (so no `.`, `..` or hidden files), no separators.
SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
#: Longest file name inside a bundle (tar headers hold longer ones, but no exporter writes them).
MAX_NAME_CHARS = 240
#: A manifest.json or manifest.sig larger than this is not one (the real ones are a few kB).
MAX_DOCUMENT_BYTES = 4 << 20


@dataclass(frozen=True)
class CheckedBundle:
    """A bundle folder whose manifest parsed and whose files match it."""

    root: Path
    manifest: BundleManifest
    manifest_bytes: bytes
    key_id: str
    signature_verified: bool

    @property
    def label(self) -> str:
        """NAME@VERSION."""
        return f"{self.manifest.name}@{self.manifest.version}"


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short, stable name of a public key (the same as the node's and model-export's)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_trusted_keys(paths: Sequence[Path]) -> list[Ed25519PublicKey]:
    """The Ed25519 public keys of `registry.trusted_keys` (PEM files); a bad file is a configuration error."""
    keys = []
    for path in paths:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as err:
            raise ConfigError([f"registry.trusted_keys: cannot read {path}: {err}"]) from err
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError([f"registry.trusted_keys: {path} is not an Ed25519 public key"])
        keys.append(key)
    return keys


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_segment(value: str, what: str) -> str:
    """A name or version that is also a folder and a URL segment: no `.`/`..`, no leading dot."""
    if not value or value.startswith(".") or "/" in value or "\\" in value:
        raise BundleInvalidError(f"{what} {value!r} cannot be stored: it must not start with a dot or hold a slash")
    return value


def _small_file(root: Path, name: str) -> bytes:
    path = root / name
    if path.is_symlink() or not path.is_file():
        missing = "is missing" if not path.exists() and not path.is_symlink() else "is not a plain file"
        raise BundleInvalidError(f"{root} is not a model bundle: {name} {missing}")
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise BundleInvalidError(f"{name} of {root} has {size} bytes; a real one has a few kB")
    return path.read_bytes()


def _read_signature(root: Path) -> tuple[str, bytes]:
    if not (root / SIGNATURE_NAME).exists():
        raise BundleSignatureError(
            f"bundle {root} is not signed: {SIGNATURE_NAME} is missing (run `model-export sign` first; nodes refuse "
            "unsigned bundles)"
        )
    raw = _small_file(root, SIGNATURE_NAME)
    try:
        document = json.loads(raw.decode("utf-8"))
        if document.get("algorithm") != SIGNATURE_ALGORITHM:
            raise ValueError(f"algorithm {document.get('algorithm')!r} is not {SIGNATURE_ALGORITHM}")
        claimed = document.get("key_id")
        if not isinstance(claimed, str) or not claimed:
            raise ValueError("key_id is missing")
        return claimed, base64.b64decode(document["signature"], validate=True)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as err:
        raise BundleSignatureError(f"{SIGNATURE_NAME} of {root} is malformed: {err}") from err


def check_signature(root: Path, manifest_bytes: bytes, trusted: Sequence[Ed25519PublicKey]) -> tuple[str, bool]:
    """(key id, verified): the verifying key's id, or with no trusted keys the id the signature file claims."""
    claimed, signature = _read_signature(root)
    if not trusted:
        return claimed, False
    for key in trusted:
        try:
            key.verify(signature, manifest_bytes)
        except InvalidSignature:
            continue
        return key_id(key), True
    known = sorted(key_id(key) for key in trusted)
    if claimed in known:
        raise BundleSignatureError(
            f"the signature of {root} does not match its {MANIFEST_NAME} (changed after signing?)"
        )
    raise BundleSignatureError(
        f"bundle {root} is signed by key {claimed}, which is not one of registry.trusted_keys ({', '.join(known)})"
    )


def parse_manifest(root: Path, manifest_bytes: bytes) -> BundleManifest:
    """The validated manifest, with a name and version that are safe as folder and URL segments."""
    try:
        manifest = BundleManifest.model_validate_json(manifest_bytes)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()[:5]
        )
        raise BundleInvalidError(f"{MANIFEST_NAME} of {root} is not a valid manifest: {problems}") from err
    if manifest.schema_version > MANIFEST_SCHEMA_VERSION:
        raise BundleInvalidError(
            f"{MANIFEST_NAME} of {root} uses schema {manifest.schema_version}; this service reads up to "
            f"{MANIFEST_SCHEMA_VERSION}: update central (and the nodes) first"
        )
    safe_segment(manifest.name, "model name")
    safe_segment(manifest.version, "model version")
    return manifest


def safe_member_name(name: str) -> str:
    """A path a bundle tar may hold: relative POSIX segments of letters, digits, `.`, `_`, `-`, none hidden."""
    parts = name.split("/")
    if len(name) > MAX_NAME_CHARS or not all(SAFE_SEGMENT.fullmatch(part) for part in parts):
        raise BundleInvalidError(
            f"{name!r} is not a safe name inside a bundle (relative, segments of A-Z a-z 0-9 . _ -, none starting "
            "with a dot)"
        )
    return name


def check_files(root: Path, manifest: BundleManifest) -> None:
    """Every listed file is a plain file inside `root` (no link on the way) with the listed size and sha256."""
    for entry in manifest.files:
        safe_member_name(entry.path)
        path = root
        for part in entry.path.split("/"):
            path = path / part
            if path.is_symlink():
                raise BundleInvalidError(f"{entry.path} in {root} goes through a link; a bundle holds plain files")
        if not path.is_file():
            raise BundleInvalidError(f"{entry.path} is listed in the manifest but missing from {root}")
        size = path.stat().st_size
        if size != entry.size:
            raise BundleInvalidError(f"{entry.path} in {root} has {size} bytes; the manifest says {entry.size}")
        digest = sha256_file(path)
        if digest != entry.sha256:
            raise BundleInvalidError(
                f"{entry.path} in {root} does not match its sha256 in the manifest (altered or corrupted): "
                f"manifest {entry.sha256[:16]}..., file {digest[:16]}..."
            )


def check_bundle(root: Path, trusted: Sequence[Ed25519PublicKey]) -> CheckedBundle:
    """Signature (when keys are trusted), manifest, then every file; raises BundleInvalidError with the reason."""
    if not root.is_dir():
        raise BundleInvalidError(f"{root} is neither a bundle folder nor a .tar of one")
    manifest_bytes = _small_file(root, MANIFEST_NAME)
    signer, verified = check_signature(root, manifest_bytes, trusted)
    manifest = parse_manifest(root, manifest_bytes)
    check_files(root, manifest)
    return CheckedBundle(root=root, manifest=manifest, manifest_bytes=manifest_bytes, key_id=signer,
                         signature_verified=verified)
