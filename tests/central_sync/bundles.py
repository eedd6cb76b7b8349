"""Small signed bundle folders for the registry tests: a valid manifest over a few bytes of stand-in files, signed
the way `model-export sign` signs (Ed25519 over manifest.json, manifest.sig as JSON). Nothing here loads as a
model; the real tiny TrOCR bundle (tests/tiny_trocr.py) is used where a node would load it."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.bundle_check import key_id

#: Stand-in files (path, role, bytes).
FILES = (
    ("encoder_model.onnx", "encoder", b"encoder-bytes" * 50),
    ("decoder_model.onnx", "decoder", b"decoder-bytes" * 40),
    ("decoder_with_past_model.onnx", "decoder_with_past", b"past-bytes" * 30),
    ("tokenizer.json", "tokenizer", b'{"model": "stand-in"}'),
    ("golden/00.png", "golden", b"\x89PNG stand-in"),
)


def manifest_doc(name: str, version: str, files: list[dict[str, object]]) -> dict[str, object]:
    """A manifest.json document (shared_models.bundle.BundleManifest) for these files."""
    return {
        "schema_version": 1, "name": name, "version": version, "engine": "trocr", "languages": ["en"],
        "created_at": "2026-12-01T10:00:00+00:00", "source": "tests", "quantization": "int8",
        "input": {"height": 32, "width": 160},
        "decoder": {"start_token_id": 2, "eos_token_id": 2, "max_length": 16, "vocab_size": 64},
        "files": files,
        "golden": [{"image": "golden/00.png", "source_text": "MILK 45", "expected": "MILK 45"}],
    }


def new_key(folder: Path, name: str = "signing") -> tuple[Ed25519PrivateKey, Path]:
    """A fresh key pair; the public half is written as PEM to folder/NAME.pub."""
    key = Ed25519PrivateKey.generate()
    folder.mkdir(parents=True, exist_ok=True)
    public = folder / f"{name}.pub"
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, public


def sign(root: Path, key: Ed25519PrivateKey) -> None:
    """Write manifest.sig over the bytes of manifest.json."""
    signature = key.sign((root / "manifest.json").read_bytes())
    document = {"algorithm": "Ed25519", "key_id": key_id(key.public_key()),
                "signature": base64.b64encode(signature).decode("ascii")}
    (root / "manifest.sig").write_text(json.dumps(document, indent=2) + "\n")


def write_manifest(root: Path, name: str, version: str, extra: dict[str, bytes] | None = None) -> None:
    """manifest.json over the files in `root` (FILES, plus `extra` files listed with role other)."""
    entries = []
    listed = [(path, role) for path, role, _data in FILES] + [(path, "other") for path in (extra or {})]
    for path, role in listed:
        data = (root / path).read_bytes()
        entries.append({"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "role": role})
    (root / "manifest.json").write_text(json.dumps(manifest_doc(name, version, entries), indent=2) + "\n")


def make_bundle(
    root: Path, key: Ed25519PrivateKey | None, name: str = "demo-trocr", version: str = "1.0.0",
    *, extra: dict[str, bytes] | None = None, salt: bytes = b"",
) -> Path:
    """A bundle folder at `root` (signed with `key` unless None); `salt` changes the encoder's bytes."""
    root.mkdir(parents=True, exist_ok=True)
    for path, _role, data in FILES:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data + salt if path == "encoder_model.onnx" else data)
    for path, data in (extra or {}).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    write_manifest(root, name, version, extra)
    if key is not None:
        sign(root, key)
    return root
