"""The exporter's error root. Library errors (optimum, torch, onnxruntime, cryptography) are translated at the
boundary with `raise ... from err`; the CLI prints the message and exits 1."""

from __future__ import annotations


class ModelExportError(Exception):
    """Root of every error `model-export` reports; `retriable` says whether running it again may help."""

    retriable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CheckpointError(ModelExportError):
    """The checkpoint cannot be found, fetched or understood (not a VisionEncoderDecoder, no tokenizer...)."""


class HubUnavailableError(CheckpointError):
    """A hub id was given but the hub cannot be reached (offline machine, HF_HUB_OFFLINE=1)."""

    retriable = True


class OnnxExportError(ModelExportError):
    """optimum / torch.onnx failed to export the model."""


class QuantizationError(ModelExportError):
    """onnxruntime's dynamic quantisation failed."""


class GoldenError(ModelExportError):
    """The exported bundle cannot read its golden lines (or misreads them under --strict-golden)."""


class OutputExistsError(ModelExportError):
    """The output folder or key file exists and --force was not given."""


class SigningKeyError(ModelExportError):
    """A private or public key file is missing, unreadable or not Ed25519."""


class BundleVerificationError(ModelExportError):
    """The bundle's signature or one of its files does not verify."""
