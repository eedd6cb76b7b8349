"""Builds the node's engines from config and answers which recognizer serves which language."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_node.config import OcrConfig
from edge_node.engines import ppocr, runtime, tesseract, trocr_onnx
from edge_node.engines.base import TextDetector, TextRecognizer
from edge_node.errors import ModelError

_LOGGER = logging.getLogger(__name__)


def _ppocr_config(config: OcrConfig) -> ppocr.PpocrConfig:
    return ppocr.PpocrConfig(
        threads=config.onnx_threads,
        enable_gpu=config.enable_gpu,
        spin_wait=config.onnx_spin_wait,
        memory_arena=config.onnx_memory_arena,
    )


def _build_ppocr(config: OcrConfig) -> TextRecognizer:
    return ppocr.PpocrRecognizer(_ppocr_config(config))


def _build_tesseract(config: OcrConfig) -> TextRecognizer:
    return tesseract.TesseractRecognizer(tesseract.TesseractConfig(tessdata_dir=config.tessdata_dir))


def _build_trocr(config: OcrConfig) -> TextRecognizer:
    if config.trocr_bundle is None:  # the config validator already says so; this keeps the type checker honest
        raise ModelError("the trocr engine needs ocr.trocr_bundle")
    return trocr_onnx.load_trocr(
        trocr_onnx.TrocrConfig(
            bundle_dir=config.trocr_bundle,
            trusted_keys=tuple(config.trusted_keys),
            threads=config.onnx_threads,
            enable_gpu=config.enable_gpu,
        )
    )


#: Engine key -> factory. New engines register here (their module holds a key, a config and a class).
RECOGNIZER_FACTORIES: dict[str, Callable[[OcrConfig], TextRecognizer]] = {
    ppocr.KEY: _build_ppocr,
    tesseract.KEY: _build_tesseract,
    trocr_onnx.KEY: _build_trocr,
}


@dataclass(frozen=True)
class Routing:
    """Which recognizer reads which language: replaced whole, never edited, so a reader sees one consistent
    state (a job that started before a model swap finishes with the recognizers it found)."""

    recognizers: dict[str, TextRecognizer]
    primary: dict[str, str]
    fallback: str | None

    def primary_for(self, language: str) -> TextRecognizer:
        """The recognizer that reads `language` first."""
        key = self.primary.get(language)
        if key is None or key not in self.recognizers:
            raise ModelError(f"no recognizer configured for language {language!r}")
        return self.recognizers[key]

    def fallback_for(self, language: str) -> TextRecognizer | None:
        """The second opinion for `language`, if one is configured and can read it."""
        if self.fallback is None or self.fallback == self.primary.get(language):
            return None
        engine = self.recognizers.get(self.fallback)
        return engine if engine is not None and language in engine.languages else None


class EngineSet:
    """The loaded detector and recognizers, and the routing rules between them (swappable, see `swap`)."""

    def __init__(self, detector: TextDetector, recognizers: dict[str, TextRecognizer], primary: dict[str, str],
                 fallback: str | None, load_seconds: dict[str, float] | None = None) -> None:
        self.detector = detector
        self.routing = Routing(dict(recognizers), dict(primary), fallback)
        #: The routing built from config at start-up: what "the embedded default" means for a rollback.
        self.default_routing = self.routing
        self.load_seconds = dict(load_seconds or {})

    @property
    def recognizers(self) -> dict[str, TextRecognizer]:
        """Loaded recognizers by key (of the current routing)."""
        return self.routing.recognizers

    @property
    def primary(self) -> dict[str, str]:
        """Language -> key of its primary recognizer."""
        return self.routing.primary

    @property
    def fallback(self) -> str | None:
        """Key of the fallback recognizer."""
        return self.routing.fallback

    def primary_for(self, language: str) -> TextRecognizer:
        """The recognizer that reads `language` first."""
        return self.routing.primary_for(language)

    def fallback_for(self, language: str) -> TextRecognizer | None:
        """The second opinion for `language`, if one is configured and can read it."""
        return self.routing.fallback_for(language)

    def swap(self, routing: Routing) -> Routing:
        """Serve with `routing` from the next lookup on (one attribute assignment: atomic); returns the old one."""
        old, self.routing = self.routing, routing
        return old

    def with_primary(self, key: str, recognizer: TextRecognizer, languages: frozenset[str],
                     base: Routing | None = None) -> Routing:
        """`base` (default: the embedded default) with `recognizer` registered as `key` and primary for
        `languages`; nothing is swapped yet."""
        base = base or self.default_routing
        primary = dict(base.primary) | {language: key for language in languages}
        return Routing({**base.recognizers, key: recognizer}, primary, base.fallback)

    @property
    def names(self) -> list[str]:
        """Keys of the loaded models, for /health."""
        return [f"{ppocr.KEY}-det", *self.recognizers]


def build_engines(config: OcrConfig) -> EngineSet:
    """Load every engine the config routes to, and warm each one up with one inference per language."""
    needed = {config.primary, config.primary_bn} | ({config.fallback} if config.fallback else set())
    timings: dict[str, float] = {}
    start = time.perf_counter()
    detector = ppocr.PpocrDetector(_ppocr_config(config))
    detector.detect(np.full((64, 64, 3), 255, dtype=np.uint8), max_side=64)
    timings[f"{ppocr.KEY}-det"] = time.perf_counter() - start
    recognizers: dict[str, TextRecognizer] = {}
    warm_crop = np.full((32, 96, 3), 255, dtype=np.uint8)
    for key in sorted(needed):
        start = time.perf_counter()
        engine = RECOGNIZER_FACTORIES[key](config)
        for language in sorted(engine.languages):  # a first request in either language finds its model loaded
            engine.recognize([warm_crop], language)
        recognizers[key] = engine
        timings[key] = time.perf_counter() - start
    _LOGGER.info("engines loaded: %s", ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))
    for language, key in (("en", config.primary), ("bn", config.primary_bn)):
        if language not in recognizers[key].languages:
            raise ModelError(f"engine {key!r} cannot read {language!r}; pick another in the ocr config")
    # Loading parses and optimises the models in buffers that are freed afterwards: give them back (~20 MB).
    runtime.trim_heap()
    return EngineSet(
        detector=detector,
        recognizers=recognizers,
        primary={"en": config.primary, "bn": config.primary_bn},
        fallback=config.fallback,
        load_seconds=timings,
    )
