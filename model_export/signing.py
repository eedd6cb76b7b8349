"""Ed25519 keys and bundle signatures: `keygen`, `sign` (over the exact bytes of manifest.json) and `verify`.

Verification is the node's own code (edge_node/engines/bundle.py), so `model-export verify` accepts exactly what a
node accepts. `sign` refuses a bundle whose files do not match its manifest: a signature vouches for the files.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_node.engines.bundle import (
    SIGNATURE_ALGORITHM,
    BundleError,
    VerifiedBundle,
    check_files,
    key_id,
    load_public_key,
    parse_manifest,
    verify_bundle,
)
from model_export.errors import BundleVerificationError, OutputExistsError, SigningKeyError
from shared_models.bundle import MANIFEST_NAME, SIGNATURE_NAME

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


def keygen(out: Path, *, name: str = "bundle-signing", force: bool = False) -> tuple[Path, Path]:
    """Write `out/NAME.key` (PKCS#8 PEM, mode 0600) and `out/NAME.pub` (SubjectPublicKeyInfo PEM)."""
    private_path, public_path = out / f"{name}{PRIVATE_SUFFIX}", out / f"{name}{PUBLIC_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise OutputExistsError(f"{path} exists; pass --force to overwrite it")
    out.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    os.chmod(private_path, 0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an unencrypted Ed25519 private key (PEM)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise SigningKeyError(f"cannot read private key {path}: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 private key")
    return key


def sign_bundle(bundle: Path, key_path: Path) -> str:
    """Check the bundle's files against its manifest, then write `manifest.sig`; return the signing key's id."""
    key = load_private_key(key_path)
    try:
        manifest = parse_manifest(bundle)
        check_files(bundle, manifest)
    except BundleError as err:
        raise BundleVerificationError(f"refusing to sign: {err.message}") from err
    signature = key.sign((bundle / MANIFEST_NAME).read_bytes())
    signer = key_id(key.public_key())
    document = {
        "algorithm": SIGNATURE_ALGORITHM,
        "key_id": signer,
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    (bundle / SIGNATURE_NAME).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return signer


def verify(bundle: Path, public_keys: Sequence[Path]) -> VerifiedBundle:
    """The node's verification: signature by one of `public_keys`, then every file's size and sha256."""
    try:
        keys = [load_public_key(path) for path in public_keys]
        return verify_bundle(bundle, keys)
    except BundleError as err:
        raise BundleVerificationError(err.message) from err
