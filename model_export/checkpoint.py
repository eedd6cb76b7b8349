"""Finding the checkpoint (a local folder, or a hub id fetched once) and reading what the bundle needs from its
config files: the encoder's input size and normalisation, and the decoder's special tokens.

Only JSON is read here (no weights), so a wrong folder fails in milliseconds, before torch is imported.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from model_export.errors import CheckpointError, HubUnavailableError
from shared_models.bundle import ImageInput

#: What a TrOCR repository needs for export; anything else there (READMEs, TF/Flax weights) is not fetched.
HUB_PATTERNS = ["*.json", "*.model", "*.txt", "*.safetensors", "pytorch_model.bin"]
#: PIL resampling codes used in preprocessor_config.json.
PIL_RESAMPLE: dict[int, Literal["nearest", "bilinear", "bicubic"]] = {0: "nearest", 2: "bilinear", 3: "bicubic"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class CheckpointInfo:
    """The parts of a VisionEncoderDecoder checkpoint's configs that the bundle's manifest records."""

    folder: Path
    source: str
    input: ImageInput
    start_token_id: int
    eos_token_id: int
    pad_token_id: int | None
    vocab_size: int
    max_positions: int


def resolve_checkpoint(model: str) -> Path:
    """A local folder as is; a hub id (`owner/name`) downloaded to the hub cache (needs hub access)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{model} is a file; pass the checkpoint folder (with config.json)")
    if not _HUB_ID.match(model):
        raise CheckpointError(f"{model} is neither a checkpoint folder nor a hub id like microsoft/trocr-small-printed")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model, allow_patterns=HUB_PATTERNS))
    except LocalEntryNotFoundError as err:
        raise HubUnavailableError(
            f"cannot fetch {model}: the model hub is not reachable from here"
            f"{' (HF_HUB_OFFLINE is set)' if os.environ.get('HF_HUB_OFFLINE') else ''}; download the checkpoint on a "
            "connected machine (`hf download ...`) and pass its folder instead"
        ) from err
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot fetch {model} from the hub: {err}") from err


def _load_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {path}: {err}") from err
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return loaded


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _image_input(encoder: dict[str, Any], preprocessor: dict[str, Any]) -> ImageInput:
    """Input size from the encoder config (the ViT refuses any other); normalisation from the image processor."""
    size = encoder.get("image_size", 384)
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    normalize = preprocessor.get("do_normalize", True)
    mean = tuple(preprocessor.get("image_mean", (0.5, 0.5, 0.5))) if normalize else (0.0, 0.0, 0.0)
    std = tuple(preprocessor.get("image_std", (0.5, 0.5, 0.5))) if normalize else (1.0, 1.0, 1.0)
    if preprocessor.get("do_rescale", True) is False or preprocessor.get("rescale_factor", 1 / 255) != 1 / 255:
        raise CheckpointError("the image processor does not scale pixels by 1/255; the node cannot reproduce it")
    resample = PIL_RESAMPLE.get(int(preprocessor.get("resample", 2)))
    if resample is None:
        raise CheckpointError(f"unsupported resample filter {preprocessor.get('resample')} in preprocessor_config")
    return ImageInput.model_validate(
        {"height": height, "width": width, "mean": mean, "std": std, "resample": resample}
    )


def read_checkpoint(folder: Path, source: str) -> CheckpointInfo:
    """Read config.json (and preprocessor_config.json when present) of a VisionEncoderDecoder checkpoint."""
    config = _load_json(folder / "config.json")
    if config.get("model_type") != "vision-encoder-decoder":
        raise CheckpointError(
            f"{source} is a {config.get('model_type')!r} model; model-export trocr needs a vision-encoder-decoder "
            "(TrOCR) checkpoint"
        )
    encoder, decoder = config.get("encoder") or {}, config.get("decoder") or {}
    preprocessor_path = folder / "preprocessor_config.json"
    preprocessor = _load_json(preprocessor_path) if preprocessor_path.is_file() else {}
    start = _first(
        config.get("decoder_start_token_id"), decoder.get("decoder_start_token_id"), decoder.get("bos_token_id")
    )
    eos = _first(config.get("eos_token_id"), decoder.get("eos_token_id"))
    if start is None or eos is None or "vocab_size" not in decoder:
        raise CheckpointError(f"{source}: config.json lacks decoder_start_token_id, eos_token_id or vocab_size")
    return CheckpointInfo(
        folder=folder,
        source=source,
        input=_image_input(encoder, preprocessor),
        start_token_id=int(start),
        eos_token_id=int(eos),
        pad_token_id=_first(config.get("pad_token_id"), decoder.get("pad_token_id")),
        vocab_size=int(decoder["vocab_size"]),
        max_positions=int(decoder.get("max_position_embeddings", 512)),
    )
