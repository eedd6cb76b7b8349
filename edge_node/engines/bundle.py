"""Opening a model bundle: the Ed25519 signature of `manifest.json` against trusted keys, then every file's sha256.

The order matters: nothing in an unsigned or wrongly signed manifest is trusted (not even its file list), so the
signature is checked first, over the exact bytes on disk, and only then is the manifest parsed and each listed file
hashed. `model-export verify` runs this same code.

`manifest.sig` is a small JSON document: `{"algorithm": "Ed25519", "key_id": "...", "signature": "<base64>"}`;
`key_id` (the first 16 hex digits of the SHA-256 of the raw public key) only names the signer in messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge_node.errors import ModelError
from shared_models.bundle import (
    MANIFEST_NAME,
    MANIFEST_SCHEMA_VERSION,
    SIGNATURE_NAME,
    BundleManifest,
    FileRole,
)

SIGNATURE_ALGORITHM = "Ed25519"
#: Files are hashed in chunks of this size, so a 150 MB decoder never sits in memory twice.
HASH_CHUNK = 1 << 20


class BundleError(ModelError):
    """The folder is not a usable bundle (missing or malformed manifest, unknown schema)."""


class BundleSignatureError(BundleError):
    """`manifest.sig` is missing, malformed, made by an untrusted key, or does not match `manifest.json`."""


class BundleIntegrityError(BundleError):
    """A listed file is missing, or its size or sha256 differs from the manifest (tampered or truncated)."""


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature and file digests have been checked."""

    root: Path
    manifest: BundleManifest
    key_id: str

    def path_for(self, role: FileRole) -> Path:
        """Absolute path of the file with `role`."""
        return self.root / self.manifest.file_for(role).path


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short, stable name of a public key for messages and the signature file."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key from a PEM file."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as err:
        raise BundleSignatureError(f"cannot read trusted key {path}: {err}") from err
    if not isinstance(key, Ed25519PublicKey):
        raise BundleSignatureError(f"trusted key {path} is not an Ed25519 public key")
    return key


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_signature(root: Path) -> tuple[str, bytes]:
    path = root / SIGNATURE_NAME
    if not path.is_file():
        raise BundleSignatureError(f"bundle {root} is not signed: {SIGNATURE_NAME} is missing")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("algorithm") != SIGNATURE_ALGORITHM:
            raise ValueError(f"algorithm {document.get('algorithm')!r} is not {SIGNATURE_ALGORITHM}")
        return str(document.get("key_id", "?")), base64.b64decode(document["signature"], validate=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as err:
        raise BundleSignatureError(f"{SIGNATURE_NAME} of {root} is malformed: {err}") from err


def check_signature(root: Path, trusted: Sequence[Ed25519PublicKey]) -> str:
    """Check `manifest.sig` over the bytes of `manifest.json`; return the id of the key that signed it."""
    if not trusted:
        raise BundleSignatureError("no trusted public keys are configured: a bundle cannot be verified")
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(f"{root} is not a model bundle: {MANIFEST_NAME} is missing")
    manifest_bytes = manifest_path.read_bytes()
    claimed, signature = _read_signature(root)
    for key in trusted:
        try:
            key.verify(signature, manifest_bytes)
        except InvalidSignature:
            continue
        return key_id(key)
    known = {key_id(key) for key in trusted}
    if claimed in known:
        raise BundleSignatureError(
            f"the signature of {root} does not match its {MANIFEST_NAME} (changed after signing?)"
        )
    raise BundleSignatureError(
        f"bundle {root} is signed by key {claimed}, which is not one of the {len(known)} trusted keys "
        f"({', '.join(sorted(known))})"
    )


def parse_manifest(root: Path) -> BundleManifest:
    """Parse and validate `manifest.json` (call only after the signature has been checked)."""
    try:
        manifest = BundleManifest.model_validate_json((root / MANIFEST_NAME).read_bytes())
    except (OSError, ValidationError) as err:
        raise BundleError(f"{MANIFEST_NAME} of {root} is not a valid manifest: {err}") from err
    if manifest.schema_version > MANIFEST_SCHEMA_VERSION:
        raise BundleError(
            f"{MANIFEST_NAME} of {root} uses schema {manifest.schema_version}; this node reads up to "
            f"{MANIFEST_SCHEMA_VERSION}: update the node first"
        )
    return manifest


def check_files(root: Path, manifest: BundleManifest) -> None:
    """Every listed file exists inside the bundle with the listed size and sha256."""
    resolved_root = root.resolve()
    for entry in manifest.files:
        path = (root / entry.path).resolve()
        if not path.is_relative_to(resolved_root):
            raise BundleIntegrityError(f"{entry.path} points outside the bundle {root}")
        if not path.is_file():
            raise BundleIntegrityError(f"{entry.path} is listed in the manifest but missing from {root}")
        size = path.stat().st_size
        if size != entry.size:
            raise BundleIntegrityError(f"{entry.path} in {root} has {size} bytes; the manifest says {entry.size}")
        digest = sha256_file(path)
        if digest != entry.sha256:
            raise BundleIntegrityError(
                f"{entry.path} in {root} does not match its sha256 (tampered or corrupted): "
                f"manifest {entry.sha256[:16]}..., file {digest[:16]}..."
            )


def verify_bundle(root: Path, trusted: Sequence[Ed25519PublicKey]) -> VerifiedBundle:
    """Signature, then manifest, then every file; raises a `BundleError` subclass with the reason."""
    if not root.is_dir():
        raise BundleError(f"model bundle {root} is not a folder")
    signer = check_signature(root, trusted)
    manifest = parse_manifest(root)
    check_files(root, manifest)
    return VerifiedBundle(root=root, manifest=manifest, key_id=signer)
