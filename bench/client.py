"""The two ways the bench reaches the OCR pipeline, behind one protocol: in-process, or a running node over HTTP.

* ``InProcessBackend`` builds the engines from the config (``EDGE_*`` variables apply) once and calls
  ``edge_node.pipeline.runner.run_image`` / ``run_line`` directly. ``edge_node`` is imported lazily, here only, so
  the metrics and the tests never need it.
* ``HttpBackend`` POSTs multipart to ``{url}/api/v1/ocr/process`` (fields ``image``, ``type``, ``language``,
  ``confidence_threshold``, ``extract_barcodes``; ``Authorization: Bearer TOKEN``) and rebuilds an ``OcrResult``
  from the envelope's ``data``. The HTTP API has no single-line endpoint, so ``line`` sends the crop as a PNG
  through the whole pipeline (detection included) and joins the returned lines with spaces.

Each call returns a ``Timed`` value: the wall time around the call, and the node's own ``processing_time_ms``
when the answer carries one.
"""

from __future__ import annotations

import json
import mimetypes
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from bench.images import encode_png
from shared_models.ocr import BoundingBox, Line, OcrOptions, OcrResult

T = TypeVar("T")

#: Seconds to wait for one HTTP answer; a whole receipt on a slow box can take several seconds.
HTTP_TIMEOUT_S = 120.0
PROCESS_PATH = "/api/v1/ocr/process"


class BackendError(Exception):
    """One call failed; ``code`` is the API error code (or the exception's type name in-process)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Timed(Generic[T]):
    """A backend answer with the wall time around the call and the node's own processing time, if known."""

    value: T
    wall_ms: float
    server_ms: float | None = None


class Backend(Protocol):
    """What the per-set evaluators call."""

    name: str

    def image(self, data: bytes, options: OcrOptions, filename: str = "image") -> Timed[OcrResult]:
        """Run the full pipeline on an encoded image file (``filename`` names the upload over HTTP)."""
        ...

    def line(self, image: np.ndarray, options: OcrOptions) -> Timed[Line]:
        """Recognise an RGB uint8 array as one text line."""
        ...


def _timed(call: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = call()
    return value, (time.perf_counter() - start) * 1000


class InProcessBackend:
    """The pipeline in this process, with engines built once from the embedded default config."""

    name = "in-process"

    def __init__(self) -> None:
        from edge_node.config import load_config
        from edge_node.engines.registry import build_engines
        from edge_node.errors import EdgeError
        from edge_node.pipeline import runner
        from edge_node.worker import pipeline_limits

        start = time.perf_counter()
        config = load_config()  # EDGE_* variables select engines and limits to compare, as on a node
        self._engines = build_engines(config.ocr)
        self._limits = pipeline_limits(config)
        self.setup_ms = (time.perf_counter() - start) * 1000
        self._runner = runner
        self._edge_error = EdgeError

    def _call(self, call: Callable[[], T]) -> tuple[T, float]:
        """Time the call; the node's typed errors become ``BackendError`` with the same code."""
        try:
            return _timed(call)
        except self._edge_error as err:
            raise BackendError(str(err.code.value), err.message) from err

    def image(self, data: bytes, options: OcrOptions, filename: str = "image") -> Timed[OcrResult]:
        """``run_image`` on the file bytes."""
        result, wall_ms = self._call(lambda: self._runner.run_image(data, options, self._engines, self._limits))
        return Timed(result, wall_ms, result.processing_time_ms or None)

    def line(self, image: np.ndarray, options: OcrOptions) -> Timed[Line]:
        """``run_line`` on the crop."""
        line, wall_ms = self._call(lambda: self._runner.run_line(image, options, self._engines))
        return Timed(line, wall_ms)


def encode_multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type header."""
    boundary = f"bench-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for key, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        f"Content-Type: {mimetypes.guess_type(filename)[0] or 'application/octet-stream'}\r\n\r\n".encode()
    )
    parts.append(data)
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def options_fields(options: OcrOptions) -> dict[str, str]:
    """The request options as the API's form fields."""
    return {
        "type": options.type.value,
        "language": options.language.value,
        "confidence_threshold": repr(options.confidence_threshold),
        "extract_barcodes": "true" if options.extract_barcodes else "false",
    }


def _box(raw: Any) -> dict[str, int]:
    raw = raw if isinstance(raw, dict) else {}
    return {key: int(raw.get(key) or 0) for key in ("x", "y", "width", "height")}


def _confidence(raw: Any) -> float:
    return min(1.0, max(0.0, float(raw or 0.0)))


def result_from_json(data: dict[str, Any]) -> OcrResult:
    """Rebuild an ``OcrResult`` from the API's ``data``, tolerating the fields the API may leave out."""
    engine = str(data.get("model_used") or "http")
    lines = []
    for raw_line in data.get("lines") or []:
        words = [
            {
                "text": str(word.get("text", "")),
                "confidence": _confidence(word.get("confidence")),
                "bounding_box": _box(word.get("bounding_box")),
                "engine": str(word.get("engine") or engine),
            }
            for word in raw_line.get("words") or []
        ]
        lines.append(
            {
                "text": str(raw_line.get("text", "")),
                "confidence": _confidence(raw_line.get("confidence")),
                "bounding_box": _box(raw_line.get("bounding_box")),
                "words": words,
                "engine": str(raw_line.get("engine") or engine),
            }
        )
    barcodes = [
        {
            "type": str(code.get("type", "")),
            "value": str(code.get("value", "")),
            "confidence": _confidence(code.get("confidence")),
            "bounding_box": _box(code.get("bounding_box")),
            "decoder": str(code.get("decoder") or ""),
            "gs1": code.get("gs1"),
        }
        for code in data.get("barcodes") or []
    ]
    return OcrResult.model_validate(
        {
            "text": str(data.get("text") or ""),
            "confidence": _confidence(data.get("confidence")),
            "lines": lines,
            "barcodes": barcodes,
            "structured": data.get("structured") or {},
            "model_used": engine,
            "processing_time_ms": float(data.get("processing_time_ms") or 0.0),
        }
    )


class HttpBackend:
    """A running node, reached over its HTTP API."""

    name = "http"

    def __init__(self, url: str, token: str | None = None, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.url = url.rstrip("/") + PROCESS_PATH
        self.token = token
        self.timeout_s = timeout_s

    def _post(self, data: bytes, filename: str, options: OcrOptions) -> dict[str, Any]:
        body, content_type = encode_multipart(options_fields(options), "image", filename, data)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as err:
            payload = err.read()
            envelope = _json_or_none(payload)
            error = (envelope or {}).get("error") or {}
            raise BackendError(str(error.get("code") or f"HTTP_{err.code}"), str(error.get("message") or err)) from err
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise BackendError("NETWORK_ERROR", str(err)) from err
        envelope = _json_or_none(payload)
        if not envelope or not envelope.get("success") or not isinstance(envelope.get("data"), dict):
            error = (envelope or {}).get("error") or {}
            raise BackendError(str(error.get("code") or "BAD_RESPONSE"), str(error.get("message") or payload[:200]))
        answer: dict[str, Any] = envelope["data"]
        return answer

    def image(self, data: bytes, options: OcrOptions, filename: str = "image") -> Timed[OcrResult]:
        """POST the file; wall time includes upload and JSON decoding."""
        raw, wall_ms = _timed(lambda: self._post(data, filename, options))
        result = result_from_json(raw)
        return Timed(result, wall_ms, result.processing_time_ms if "processing_time_ms" in raw else None)

    def line(self, image: np.ndarray, options: OcrOptions) -> Timed[Line]:
        """POST the crop as PNG through the full pipeline and join the lines it finds into one."""
        png = encode_png(image)
        raw, wall_ms = _timed(lambda: self._post(png, "line.png", options))
        result = result_from_json(raw)
        line = Line(
            text=" ".join(line.text for line in result.lines) if result.lines else result.text.strip(),
            confidence=result.confidence,
            bounding_box=BoundingBox(x=0, y=0, width=image.shape[1], height=image.shape[0]),
            words=result.words,
            engine=result.model_used,
        )
        return Timed(line, wall_ms, result.processing_time_ms if "processing_time_ms" in raw else None)


def _json_or_none(payload: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
