"""bench.client: multipart encoding, tolerant result parsing, and the HTTP backend against a local stub server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from bench.client import (
    BackendError,
    HttpBackend,
    InProcessBackend,
    encode_multipart,
    options_fields,
    result_from_json,
)
from bench.datasets import REPO_ROOT
from shared_models.ocr import BoundingBox, DocumentType, Language, Line, OcrOptions, OcrResult


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    message = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.get_payload():
        assert isinstance(part, Message)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        fields[str(part.get_param("name", header="content-disposition"))] = (part.get_filename(), payload)
    return fields


def test_encode_multipart_round_trip() -> None:
    body, content_type = encode_multipart({"type": "receipt", "language": "bn"}, "image", "x.png", b"\x89PNG\r\n--")
    fields = _parse_multipart(content_type, body)
    assert fields["type"] == (None, b"receipt")
    assert fields["language"] == (None, b"bn")
    assert fields["image"] == ("x.png", b"\x89PNG\r\n--")


def test_options_fields() -> None:
    options = OcrOptions(
        type=DocumentType.BARCODE, language=Language.BN, confidence_threshold=0.5, extract_barcodes=False
    )
    assert options_fields(options) == {
        "type": "barcode",
        "language": "bn",
        "confidence_threshold": "0.5",
        "extract_barcodes": "false",
    }


def test_result_from_json_tolerates_missing_fields() -> None:
    result = result_from_json(
        {
            "id": "job-1",
            "text": "TOTAL 9.90",
            "confidence": 0.93,
            "lines": [{"text": "TOTAL 9.90", "confidence": 0.93, "bounding_box": {"x": 1, "y": 2, "width": 3}}],
            "barcodes": [{"type": "EAN_13", "value": "4006381333931"}],
            "structured": {"total": 9.9, "merchant": "SHOP"},
            "processing_time_ms": 12.5,
            "model_used": "ppocr",
        }
    )
    assert result.lines[0].bounding_box.height == 0
    assert result.lines[0].engine == "ppocr"
    assert result.barcodes[0].value == "4006381333931"
    assert result.structured.total == 9.9
    assert result.processing_time_ms == 12.5
    assert result_from_json({}).text == ""


class _Stub(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []
    answer: tuple[int, dict[str, Any]] = (200, {})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append(
            {
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "fields": _parse_multipart(self.headers["Content-Type"], body),
            }
        )
        status, envelope = type(self).answer
        payload = json.dumps(envelope).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def stub() -> Iterator[str]:
    _Stub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _ok(data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"success": True, "data": data}


def test_http_image(stub: str) -> None:
    _Stub.answer = _ok(
        {"text": "A", "confidence": 0.9, "lines": [], "barcodes": [], "processing_time_ms": 7.0, "model_used": "x"}
    )
    backend = HttpBackend(stub, "secret")
    timed = backend.image(b"jpegbytes", OcrOptions(type=DocumentType.RECEIPT), "r.jpg")
    assert timed.value.text == "A"
    assert timed.server_ms == 7.0
    assert timed.wall_ms > 0
    request = _Stub.requests[0]
    assert request["path"] == "/api/v1/ocr/process"
    assert request["authorization"] == "Bearer secret"
    assert request["fields"]["image"] == ("r.jpg", b"jpegbytes")
    assert request["fields"]["type"] == (None, b"receipt")
    assert request["fields"]["extract_barcodes"] == (None, b"true")


def test_http_line_joins_lines(stub: str) -> None:
    _Stub.answer = _ok(
        {
            "text": "HELLO\nWORLD",
            "confidence": 0.8,
            "lines": [{"text": "HELLO", "confidence": 0.8}, {"text": "WORLD", "confidence": 0.8}],
            "model_used": "ppocr",
        }
    )
    timed = HttpBackend(stub).line(np.zeros((8, 30, 3), np.uint8), OcrOptions(language=Language.BN))
    assert timed.value.text == "HELLO WORLD"
    assert timed.value.bounding_box.width == 30
    assert timed.server_ms is None  # the answer carried no processing_time_ms
    request = _Stub.requests[0]
    assert request["authorization"] is None
    assert request["fields"]["image"][1].startswith(b"\x89PNG")
    assert request["fields"]["language"] == (None, b"bn")


def test_http_error_envelope(stub: str) -> None:
    _Stub.answer = (422, {"success": False, "error": {"code": "LOW_QUALITY", "message": "too blurry"}})
    with pytest.raises(BackendError) as caught:
        HttpBackend(stub).image(b"x", OcrOptions())
    assert (caught.value.code, caught.value.message) == ("LOW_QUALITY", "too blurry")


def test_http_unsuccessful_200(stub: str) -> None:
    _Stub.answer = (200, {"success": False})
    with pytest.raises(BackendError, match="BAD_RESPONSE"):
        HttpBackend(stub).image(b"x", OcrOptions())


def test_http_network_error() -> None:
    backend = HttpBackend("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(BackendError, match="NETWORK_ERROR"):
        backend.image(b"x", OcrOptions())


def test_bench_imports_no_edge_node() -> None:
    code = (
        "import sys, bench.__main__, bench.sets, bench.report; "
        "sys.exit(any(name.startswith('edge_node') for name in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO_ROOT).returncode == 0


def test_in_process_backend_uses_the_runner_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge_node.pipeline
    from edge_node.errors import LowQualityError

    seen: dict[str, Any] = {}
    config = types.ModuleType("edge_node.config")
    config.load_config = lambda: types.SimpleNamespace(ocr="ocr-section")  # type: ignore[attr-defined]
    registry = types.ModuleType("edge_node.engines.registry")
    registry.build_engines = lambda section: seen.setdefault("engines", f"engines({section})")  # type: ignore[attr-defined]
    runner = types.ModuleType("edge_node.pipeline.runner")
    worker = types.ModuleType("edge_node.worker")
    worker.pipeline_limits = lambda cfg: f"limits({cfg.ocr})"  # type: ignore[attr-defined]

    def run_image(data: bytes, options: OcrOptions, engines: str, limits: str) -> OcrResult:
        if data == b"dark":
            raise LowQualityError("too dark")
        seen["image"] = (data, options, engines, limits)
        return OcrResult(text="T", confidence=0.5, model_used="m", processing_time_ms=3.0)

    def run_line(image: np.ndarray, options: OcrOptions, engines: str) -> Line:
        seen["line"] = (image.shape, options, engines)
        return Line(text="L", confidence=0.5, bounding_box=BoundingBox(x=0, y=0, width=1, height=1), engine="m")

    runner.run_image = run_image  # type: ignore[attr-defined]
    runner.run_line = run_line  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "edge_node.config", config)
    monkeypatch.setitem(sys.modules, "edge_node.engines.registry", registry)
    monkeypatch.setitem(sys.modules, "edge_node.pipeline.runner", runner)
    monkeypatch.setitem(sys.modules, "edge_node.worker", worker)
    monkeypatch.setattr(edge_node.pipeline, "runner", runner, raising=False)

    backend = InProcessBackend()
    assert seen["engines"] == "engines(ocr-section)"
    options = OcrOptions(type=DocumentType.RECEIPT)
    timed = backend.image(b"jpeg", options)
    assert timed.value.text == "T"
    assert timed.server_ms == 3.0
    assert seen["image"] == (b"jpeg", options, "engines(ocr-section)", "limits(ocr-section)")
    assert backend.line(np.zeros((4, 5, 3), np.uint8), options).value.text == "L"
    assert seen["line"] == ((4, 5, 3), options, "engines(ocr-section)")
    with pytest.raises(BackendError) as caught:
        backend.image(b"dark", options)
    assert (caught.value.code, caught.value.message) == ("LOW_QUALITY", "too dark")
