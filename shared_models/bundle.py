"""A model bundle's manifest: what `model-export` writes, what the node verifies and loads, what central stores.

A bundle is a folder: `manifest.json` (this model), the files it lists (each with its sha256), and `manifest.sig`
(an Ed25519 signature over the exact bytes of `manifest.json`). Paths in the manifest are relative, POSIX-style,
and never leave the bundle folder.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
#: Bumped when a field changes meaning; a node refuses manifests newer than it understands.
MANIFEST_SCHEMA_VERSION = 1

FileRole = Literal["encoder", "decoder", "decoder_with_past", "tokenizer", "golden", "config", "other"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _safe_relative(path: str) -> str:
    """A bundle path must stay inside the bundle: relative, no `..`, no backslashes."""
    pure = PurePosixPath(path)
    if not path or "\\" in path or pure.is_absolute() or ".." in pure.parts or path != pure.as_posix():
        raise ValueError(f"{path!r} is not a plain relative path inside the bundle")
    return path


class BundleFile(_Strict):
    """One file of the bundle and its digest."""

    path: str = Field(description="Relative POSIX path inside the bundle folder.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the file's bytes.")
    size: int = Field(ge=0, description="Size in bytes.")
    role: FileRole = Field("other", description="What the file is for.")

    @field_validator("path")
    @classmethod
    def _inside(cls, path: str) -> str:
        return _safe_relative(path)


class ImageInput(_Strict):
    """How a line crop becomes the encoder's `pixel_values`: resize (no aspect kept), scale to 0-1, normalise."""

    height: int = Field(gt=0, description="Encoder input height in pixels.")
    width: int = Field(gt=0, description="Encoder input width in pixels.")
    channels: Literal[3] = Field(3, description="RGB.")
    mean: tuple[float, float, float] = Field((0.5, 0.5, 0.5), description="Per-channel mean subtracted.")
    std: tuple[float, float, float] = Field((0.5, 0.5, 0.5), description="Per-channel divisor.")
    resample: Literal["bilinear", "bicubic", "nearest"] = Field("bilinear", description="PIL resampling filter.")


class DecoderSpec(_Strict):
    """Greedy decoding parameters of a vision encoder-decoder model."""

    start_token_id: int = Field(ge=0, description="First decoder input token.")
    eos_token_id: int = Field(ge=0, description="Generation stops at this token.")
    pad_token_id: int | None = Field(None, ge=0, description="Padding token, if the vocabulary has one.")
    max_length: int = Field(64, ge=2, le=1024, description="Most tokens generated per line (start token included).")
    vocab_size: int = Field(gt=0, description="Size of the logits' last axis.")


class GoldenCase(_Strict):
    """A rendered line the bundle must read the same way on every node (the load-time self-test)."""

    image: str = Field(description="PNG file of the line, relative to the bundle.")
    source_text: str = Field(description="The text that was rendered into the image.")
    expected: str = Field(description="What the exported bundle read at export time; the self-test compares to it.")

    @field_validator("image")
    @classmethod
    def _inside(cls, path: str) -> str:
        return _safe_relative(path)


class BundleManifest(_Strict):
    """`manifest.json`."""

    schema_version: int = Field(MANIFEST_SCHEMA_VERSION, ge=1, description="Manifest format version.")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$",
                      description="Model name (also a folder name: no leading dot).")
    version: str = Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_+-][A-Za-z0-9.+_-]*$",
                         description="Model version (also a folder name: no leading dot).")
    engine: Literal["trocr"] = Field(description="The node engine that loads this bundle.")
    languages: list[str] = Field(min_length=1, description="Request languages the model reads (en, bn).")
    created_at: str = Field(description="ISO-8601 UTC time of the export.")
    source: str = Field(description="The checkpoint the bundle was exported from (hub id or folder name).")
    quantization: Literal["none", "int8", "int8+embeddings"] = Field(description="Weight quantisation applied.")
    input: ImageInput = Field(description="Encoder input.")
    decoder: DecoderSpec = Field(description="Decoding parameters.")
    files: list[BundleFile] = Field(min_length=1, description="Every file of the bundle but the manifest and sig.")
    golden: list[GoldenCase] = Field(default_factory=list, description="Self-test cases.")

    @model_validator(mode="after")
    def _consistent(self) -> BundleManifest:
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("a file is listed twice")
        if MANIFEST_NAME in paths or SIGNATURE_NAME in paths:
            raise ValueError("the manifest and signature are not listed as bundle files")
        for case in self.golden:
            if case.image not in paths:
                raise ValueError(f"golden image {case.image} is not a listed file")
        for role in ("encoder", "decoder", "decoder_with_past", "tokenizer"):
            if sum(f.role == role for f in self.files) != 1:
                raise ValueError(f"a {self.engine} bundle needs exactly one {role} file")
        return self

    def file_for(self, role: FileRole) -> BundleFile:
        """The single file with `role` (encoder, decoder, decoder_with_past, tokenizer)."""
        return next(f for f in self.files if f.role == role)
