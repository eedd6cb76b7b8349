"""TrOCR line recognizer from a signed bundle: int8 ONNX encoder + decoder with past (KV cache) + tokenizer.json.

Only onnxruntime, tokenizers and numpy run here (no torch, no transformers). The bundle is verified (signature, then
every file's sha256, see `bundle.py`) before any of its files is opened, and its golden lines are read once at load
(the self-test): a node that reads them differently from the exporting machine refuses the bundle.

Decoding is greedy: the encoder runs once per batch of crops; the first decoder step (`decoder_model.onnx`) also
returns the cross-attention keys/values, which stay fixed, and each later step (`decoder_with_past_model.onnx`)
feeds one token per line plus the self-attention cache. Dynamic int8 quantisation picks activation scales per
tensor, so a line's probabilities can differ slightly with the other lines in its batch; the self-test therefore
reads each golden line alone, as the exporter did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image

from edge_node.engines.base import LineReading
from edge_node.engines.bundle import BundleError, VerifiedBundle, load_public_key, verify_bundle
from edge_node.engines.runtime import create_session
from edge_node.engines.trocr_text import char_probabilities, line_reading
from edge_node.errors import ModelError
from shared_models.bundle import ImageInput

if TYPE_CHECKING:
    import onnxruntime as ort
    from tokenizers import Tokenizer

KEY = "trocr"
#: Crops per encoder/decoder run: enough to amortise the per-call overhead, small enough for a Pi's memory.
BATCH = 8
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
             "nearest": Image.Resampling.NEAREST}
_LOGGER = logging.getLogger(__name__)


class BundleSelfTestError(BundleError):
    """The bundle verified, but this node does not read its golden lines as the exporter did."""


@dataclass(frozen=True)
class TrocrConfig:
    """Which bundle, which keys may sign it, and how sessions are built."""

    bundle_dir: Path
    trusted_keys: tuple[Path, ...]
    type: Literal["trocr"] = "trocr"
    threads: int = 0
    enable_gpu: bool = False
    self_test: bool = True


@dataclass
class Generated:
    """One line's greedy decoding: token ids (end token excluded), each one's probability, whether it ended."""

    ids: list[int] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    complete: bool = False


def preprocess(crop: np.ndarray, spec: ImageInput) -> np.ndarray:
    """RGB uint8 crop -> normalised float32 (3, H, W), as the checkpoint's ViT image processor does (PIL resize)."""
    image = Image.fromarray(np.ascontiguousarray(crop)).convert("RGB")
    resized = image.resize((spec.width, spec.height), _RESAMPLE[spec.resample])
    scaled = np.asarray(resized, dtype=np.float32) / np.float32(255.0)
    normalised = (scaled - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    return normalised.transpose(2, 0, 1).astype(np.float32, copy=False)


def _load_tokenizer(path: Path) -> Tokenizer:
    try:
        from tokenizers import Tokenizer
    except ImportError as err:  # the edge extra installs it; a hand-made environment may not have it
        raise ModelError("the trocr engine needs the `tokenizers` package (pip install 'zakpos-ocr[edge]')") from err
    try:
        return Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises bare Exception subclasses
        raise BundleError(f"cannot load {path.name}: {err}") from err


def load_trocr(config: TrocrConfig) -> TrocrRecognizer:
    """Verify the configured bundle against the trusted keys, load it, and run its self-test."""
    keys = [load_public_key(path) for path in config.trusted_keys]
    bundle = verify_bundle(config.bundle_dir, keys)
    if bundle.manifest.engine != KEY:
        raise BundleError(f"bundle {config.bundle_dir} is for engine {bundle.manifest.engine!r}, not {KEY!r}")
    recognizer = TrocrRecognizer(bundle, threads=config.threads, enable_gpu=config.enable_gpu)
    if config.self_test:
        recognizer.check_self_test()
    _LOGGER.info(
        "trocr bundle %s %s loaded (signed by %s, %s)",
        bundle.manifest.name, bundle.manifest.version, bundle.key_id, bundle.manifest.quantization,
    )
    return recognizer


class TrocrRecognizer:
    """Reads line crops with a TrOCR-architecture model (English by default; the manifest lists the languages)."""

    key = KEY

    def __init__(self, bundle: VerifiedBundle, *, threads: int = 0, enable_gpu: bool = False) -> None:
        self.bundle = bundle
        manifest = bundle.manifest
        self.languages = frozenset(manifest.languages)
        self._input = manifest.input
        self._spec = manifest.decoder
        self._encoder = create_session(bundle.path_for("encoder"), threads=threads, enable_gpu=enable_gpu)
        self._decoder = create_session(bundle.path_for("decoder"), threads=threads, enable_gpu=enable_gpu)
        self._decoder_past = create_session(
            bundle.path_for("decoder_with_past"), threads=threads, enable_gpu=enable_gpu
        )
        self._tokenizer = _load_tokenizer(bundle.path_for("tokenizer"))  # thread-safe: workers share it
        self._encoder_output = self._encoder.get_outputs()[0].name
        self._past_inputs = [i.name for i in self._decoder_past.get_inputs() if i.name.startswith("past_key_values.")]
        missing = {n.replace("past_key_values.", "present.") for n in self._past_inputs} - {
            o.name for o in self._decoder.get_outputs()
        }
        if missing or not self._past_inputs:
            raise BundleError(f"the decoder files of {bundle.root} do not fit together (missing {sorted(missing)})")

    def recognize(self, crops: list[np.ndarray], language: str = "en") -> list[LineReading]:
        """Read each crop as one line, in batches of `BATCH`."""
        readings: list[LineReading] = []
        for start in range(0, len(crops), BATCH):
            for decoded in self.generate(crops[start : start + BATCH]):
                text, probs = char_probabilities(self._tokenizer, decoded.ids, decoded.probs)
                readings.append(line_reading(text, probs, complete=decoded.complete))
        return readings

    def self_test(self) -> list[str]:
        """Read every golden line alone; return one message per line read differently from the manifest."""
        failures = []
        for case in self.bundle.manifest.golden:
            image = np.asarray(Image.open(self.bundle.root / case.image).convert("RGB"))
            text = self.recognize([image])[0].text
            if text != case.expected:
                failures.append(f"{case.image}: expected {case.expected!r}, read {text!r}")
        return failures

    def check_self_test(self) -> None:
        """`self_test`, raising `BundleSelfTestError` on any difference."""
        failures = self.self_test()
        if failures:
            raise BundleSelfTestError(
                f"bundle {self.bundle.root} failed its self-test on this node: " + "; ".join(failures)
            )

    def _run(self, session: ort.InferenceSession, feed: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
        try:
            names = [o.name for o in session.get_outputs()]
            return dict(zip(names, session.run(names, feed), strict=True))
        except Exception as err:  # onnxruntime raises bare RuntimeError/Fail subclasses
            raise ModelError(f"trocr {what} failed: {err}") from err

    def generate(self, crops: list[np.ndarray]) -> list[Generated]:
        """Greedy decoding of one batch (all `crops` at once), keeping each chosen token's probability."""
        pixels = np.stack([preprocess(crop, self._input) for crop in crops])
        hidden = self._run(self._encoder, {"pixel_values": pixels}, "encoder")[self._encoder_output]
        rows = [Generated() for _ in crops]
        tokens = np.full((len(crops), 1), self._spec.start_token_id, dtype=np.int64)
        outputs = self._run(self._decoder, {"input_ids": tokens, "encoder_hidden_states": hidden}, "decoder")
        past = {name: outputs[name.replace("past_key_values.", "present.")] for name in self._past_inputs}
        for _step in range(self._spec.max_length - 1):
            logits = outputs["logits"][:, -1, :].astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            chosen = probs.argmax(axis=1)
            for index, (row, token) in enumerate(zip(rows, chosen, strict=True)):
                if row.complete:
                    continue
                if int(token) == self._spec.eos_token_id:
                    row.complete = True
                else:
                    row.ids.append(int(token))
                    row.probs.append(float(probs[index, token]))
            if all(row.complete for row in rows):
                break
            tokens = chosen.astype(np.int64)[:, np.newaxis]
            outputs = self._run(self._decoder_past, {"input_ids": tokens, **past}, "decoder step")
            for name in self._past_inputs:
                present = name.replace("past_key_values.", "present.")
                if present in outputs:  # cross-attention entries come only from the first step
                    past[name] = outputs[present]
        return rows
