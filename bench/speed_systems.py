"""The systems the speed benchmark runs side by side on the same images.

* ``OursHttp``: our node over ``POST /api/v1/ocr/process`` (multipart, Bearer token), one kept-alive connection
  per client thread.
* ``OursDirect``: ``edge_node.pipeline.runner.run_image`` in this process, with engines built from the same
  config as the node (for the API overhead).
* ``PeerHttp``: rapidocr-api (FastAPI + RapidOCR with its defaults) over ``POST /ocr`` (field ``image_file``).
* ``RawRapid``: ``rapidocr.RapidOCR()`` with its default settings, called on the file bytes in a loop.
* ``RawTesseract``: one loaded ``tesserocr.PyTessBaseAPI`` (eng, default page segmentation) in a loop.
* ``RawZxing``: ``zxingcpp.read_barcodes`` on the decoded photo (its defaults: try harder, rotate, invert).

Every call returns an ``Answer``: the ``Reading`` to score, and the node's own processing time when it has one.
Timing is done by the caller, around ``call``; decoding the file is part of every system's time.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np

from bench.client import encode_multipart
from bench.speed_score import Reading
from bench.speed_sets import SpeedItem

#: Seconds to wait for one answer (a receipt through a busy peer can take several seconds).
HTTP_TIMEOUT_S = 120.0
OURS_PATH = "/api/v1/ocr/process"
PEER_PATH = "/ocr"
TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")
#: zxing-cpp format names -> zxing (Java) names, as the bench's truth and our API use them.
ZXING_NAMES = {"EAN13": "EAN_13", "EAN8": "EAN_8", "UPCA": "UPC_A", "UPCE": "UPC_E", "Code128": "CODE_128",
               "QRCode": "QR_CODE", "DataMatrix": "DATA_MATRIX", "Code39": "CODE_39", "ITF": "ITF"}


class CallFailedError(Exception):
    """One call failed (HTTP error status, bad answer or engine error)."""


@dataclass(frozen=True)
class Answer:
    """A system's reading of one image, and the server's own processing time when it reports one."""

    reading: Reading
    server_ms: float | None = None
    stages: dict[str, float] = field(default_factory=dict)


class System(Protocol):
    """One thing being measured."""

    name: str
    kind: str  # "ours-api" | "ours-direct" | "peer" | "raw"
    reads_text: bool
    reads_barcodes: bool

    def supports(self, doc_type: str) -> bool:
        """Whether this system is run on images of this request type."""
        ...

    def call(self, item: SpeedItem) -> Answer:
        """Process one image; raises ``CallFailedError`` on failure."""
        ...


class KeepAliveClient:
    """POSTs over one kept-alive HTTP/1.1 connection per thread (reconnects once when the server closed it)."""

    def __init__(self, url: str, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            self._local.conn = conn
        return conn

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """(status, body) of one POST."""
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt == 1)
            try:
                conn.request("POST", path, body=body, headers=dict(headers))
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str) -> int:
        """Status of one GET (health checks)."""
        conn = self._connection()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status


def _box_height(box: Any) -> float:
    points = np.asarray(box, dtype=np.float32).reshape(-1, 2)
    return float(points[:, 1].max() - points[:, 1].min()) if points.size else 0.0


def reading_from_ours(data: Mapping[str, Any]) -> Reading:
    """Our API's ``data`` -> Reading."""
    lines = tuple(
        (str(line.get("text", "")), float((line.get("bounding_box") or {}).get("height") or 0))
        for line in data.get("lines") or []
    )
    price = (data.get("structured") or {}).get("price")
    barcodes = tuple((str(code.get("type", "")), str(code.get("value", ""))) for code in data.get("barcodes") or [])
    return Reading(lines, float(price) if price is not None else None, barcodes, reads_barcodes=True)


def reading_from_peer(payload: Any) -> Reading:
    """rapidocr-api's answer ``{"0": {"rec_txt", "dt_boxes", "score"}, ...}`` -> Reading (in its order)."""
    if not isinstance(payload, dict):
        raise CallFailedError(f"unexpected peer answer: {str(payload)[:200]}")
    entries = sorted(payload.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 0)
    return Reading(tuple((str(e.get("rec_txt", "")), _box_height(e.get("dt_boxes", []))) for _, e in entries))


class OursHttp:
    """Our node through its API."""

    kind = "ours-api"
    reads_text = True
    reads_barcodes = True

    def __init__(self, name: str, url: str, token: str) -> None:
        self.name = name
        self.url = url
        self._client = KeepAliveClient(url)
        self._token = token

    def supports(self, doc_type: str) -> bool:
        """Every type."""
        return True

    def call(self, item: SpeedItem) -> Answer:
        """POST the image with its type; the node's cache must be off for latency figures."""
        body, content_type = encode_multipart({"type": item.doc_type}, "image", item.filename, item.data)
        status, raw = self._client.post(
            OURS_PATH, body, {"Content-Type": content_type, "Authorization": f"Bearer {self._token}"}
        )
        try:
            envelope = json.loads(raw)
        except ValueError as err:
            raise CallFailedError(f"HTTP {status}: {raw[:200]!r}") from err
        if status != 200 or not envelope.get("success"):
            error = envelope.get("error") or {}
            raise CallFailedError(f"HTTP {status} {error.get('code')}: {error.get('message')}")
        data = envelope["data"]
        return Answer(reading_from_ours(data), data.get("processing_time_ms"), dict(data.get("stage_times_ms") or {}))


class OursDirect:
    """Our pipeline called in this process: what the API adds is the difference to ``OursHttp``."""

    kind = "ours-direct"
    reads_text = True
    reads_barcodes = True

    def __init__(self, name: str, environ: Mapping[str, str]) -> None:
        from edge_node.config import load_config
        from edge_node.engines.registry import build_engines
        from edge_node.pipeline import runner

        config = load_config(environ=environ)
        self.name = name
        self._runner = runner
        self._engines = build_engines(config.ocr)
        self._limits = runner.PipelineLimits(
            max_pixels=config.limits.max_image_pixels,
            decode_max_side=config.ocr.decode_max_side,
            detector_max_side=config.ocr.detector_max_side,
            detector_max_side_documents=config.ocr.detector_max_side_documents,
        )

    def supports(self, doc_type: str) -> bool:
        """Every type."""
        return True

    def call(self, item: SpeedItem) -> Answer:
        """``run_image`` on the file bytes."""
        from shared_models.ocr import OcrOptions

        try:
            result = self._runner.run_image(item.data, OcrOptions(type=item.doc_type), self._engines, self._limits)
        except Exception as err:
            raise CallFailedError(f"{type(err).__name__}: {err}") from err
        data = result.model_dump(mode="json")
        return Answer(reading_from_ours(data), result.processing_time_ms, dict(result.stage_times_ms))


class PeerHttp:
    """rapidocr-api over HTTP."""

    kind = "peer"
    reads_text = True
    reads_barcodes = False

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self._client = KeepAliveClient(url)

    def supports(self, doc_type: str) -> bool:
        """It reads text only."""
        return doc_type != "barcode"

    def call(self, item: SpeedItem) -> Answer:
        """POST the file as ``image_file``."""
        body, content_type = encode_multipart({}, "image_file", item.filename, item.data)
        status, raw = self._client.post(PEER_PATH, body, {"Content-Type": content_type})
        if status != 200:
            raise CallFailedError(f"HTTP {status}: {raw[:200]!r}")
        try:
            return Answer(reading_from_peer(json.loads(raw)))
        except ValueError as err:
            raise CallFailedError(f"bad peer answer: {raw[:200]!r}") from err


class RawRapid:
    """``RapidOCR()`` with its defaults."""

    kind = "raw"
    reads_text = True
    reads_barcodes = False

    def __init__(self, name: str = "raw RapidOCR()") -> None:
        from rapidocr import RapidOCR

        self.name = name
        self._engine = RapidOCR()
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)

    def supports(self, doc_type: str) -> bool:
        """Text only."""
        return doc_type != "barcode"

    def call(self, item: SpeedItem) -> Answer:
        """The engine on the file bytes (it decodes them itself)."""
        try:
            out: Any = self._engine(item.data)
        except Exception as err:
            raise CallFailedError(f"{type(err).__name__}: {err}") from err
        texts = out.txts or ()
        boxes = out.boxes if out.boxes is not None else [None] * len(texts)
        return Answer(Reading(tuple((str(t), _box_height(b) if b is not None else 0.0)
                                    for t, b in zip(texts, boxes, strict=False))))


class RawTesseract:
    """One loaded ``PyTessBaseAPI`` (English, automatic page segmentation)."""

    kind = "raw"
    reads_text = True
    reads_barcodes = False

    def __init__(self, name: str = "raw tesserocr", tessdata: Path = TESSDATA) -> None:
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # STACK-NOTES: OpenMP makes it ~3x slower on 2 cores
        import tesserocr

        self.name = name
        self._tesserocr = tesserocr
        self._api = tesserocr.PyTessBaseAPI(path=str(tessdata).rstrip("/") + "/", lang="eng")
        self._lock = threading.Lock()

    def supports(self, doc_type: str) -> bool:
        """Text only."""
        return doc_type != "barcode"

    def call(self, item: SpeedItem) -> Answer:
        """Recognise the page; lines with their box heights."""
        from PIL import Image

        level = self._tesserocr.RIL.TEXTLINE
        lines: list[tuple[str, float]] = []
        with self._lock, Image.open(io.BytesIO(item.data)) as image:
            self._api.SetImage(image.convert("RGB"))
            self._api.Recognize()
            iterator = self._api.GetIterator()
            if iterator is not None:
                for element in self._tesserocr.iterate_level(iterator, level):
                    try:
                        text = element.GetUTF8Text(level)
                    except RuntimeError:
                        continue
                    box = element.BoundingBox(level)
                    if text and text.strip():
                        lines.append((text.strip(), float(box[3] - box[1]) if box else 0.0))
        return Answer(Reading(tuple(lines)))


class RawZxing:
    """zxing-cpp with its defaults on the decoded photo."""

    kind = "raw"
    reads_text = False
    reads_barcodes = True

    def __init__(self, name: str = "raw zxing-cpp") -> None:
        import zxingcpp

        self.name = name
        self._zxing = zxingcpp

    def supports(self, doc_type: str) -> bool:
        """Barcode photos and product photos (its barcode)."""
        return doc_type in ("barcode", "product")

    def call(self, item: SpeedItem) -> Answer:
        """Decode to RGB, read every code."""
        from PIL import Image

        with Image.open(io.BytesIO(item.data)) as image:
            pixels = np.asarray(image.convert("RGB"))
        codes = tuple(
            (ZXING_NAMES.get(result.format.name, result.format.name.upper()), result.text)
            for result in self._zxing.read_barcodes(pixels)
        )
        return Answer(Reading(barcodes=codes, reads_text=False, reads_barcodes=True))
