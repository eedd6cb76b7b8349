"""The `trocr` engine on a tiny bundle exported and signed here: verified loading, greedy decoding with the KV
cache, confidences and word positions, the API with OCR_MODEL_PRIMARY=trocr, and refusals of bad bundles."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image
from support import encode, render_lines
from tiny_trocr import TEXTS, TinyBundle, build, pipeline_crops

from edge_node.app import create_app
from edge_node.auth import issue_token
from edge_node.config import ConfigError, EdgeConfig, load_config
from edge_node.engines.base import TextRecognizer
from edge_node.engines.bundle import BundleIntegrityError, BundleSignatureError
from edge_node.engines.registry import EngineSet, build_engines
from edge_node.engines.trocr_onnx import BundleSelfTestError, TrocrConfig, TrocrRecognizer, load_trocr
from edge_node.engines.trocr_text import TRUNCATED_FACTOR, char_probabilities, line_reading
from edge_node.errors import ModelError
from model_export.signing import sign_bundle
from model_export.synthetic import rendered_samples
from shared_models.bundle import MANIFEST_NAME

SECRET = "test-secret-that-is-long-enough-for-hs256"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory, engines: EngineSet) -> TinyBundle:
    return build(tmp_path_factory.mktemp("tiny-trocr"), engines.detector)


def trocr_environ(tiny: TinyBundle, data_dir: Path, bundle: Path | None = None) -> dict[str, str]:
    return {
        "EDGE_STORAGE__DATA_DIR": str(data_dir),
        "EDGE_JWT_SECRET": SECRET,
        "EDGE_SHOP_ID": "shop-a",
        "EDGE_WORKER__WORKERS": "1",
        "OCR_MODEL_PRIMARY": "trocr",
        "EDGE_OCR__TROCR_BUNDLE": str(bundle or tiny.bundle),
        "EDGE_OCR__TRUSTED_KEYS": str(tiny.public_key),
    }


@pytest.fixture(scope="session")
def trocr_engines(tiny: TinyBundle, tmp_path_factory: pytest.TempPathFactory) -> EngineSet:
    config = load_config(environ=trocr_environ(tiny, tmp_path_factory.mktemp("data")))
    return build_engines(config.ocr)


def loader_config(tiny: TinyBundle, bundle: Path | None = None, key: Path | None = None) -> TrocrConfig:
    return TrocrConfig(bundle_dir=bundle or tiny.bundle, trusted_keys=(key or tiny.public_key,), threads=1)


def test_registry_loads_trocr_as_primary_with_the_usual_fallback(trocr_engines: EngineSet) -> None:
    assert trocr_engines.primary_for("en").key == "trocr"
    fallback = trocr_engines.fallback_for("en")
    assert fallback is not None and fallback.key == "tesseract"
    assert trocr_engines.primary_for("bn").key == "tesseract"
    assert isinstance(trocr_engines.recognizers["trocr"], TextRecognizer)


def test_reads_the_golden_lines_and_the_pipeline_crops(trocr_engines: EngineSet, engines: EngineSet) -> None:
    recognizer = trocr_engines.recognizers["trocr"]
    golden = [image for _, image in rendered_samples(TEXTS, variants=1)]
    crops = [crop for _, crop in pipeline_crops(engines.detector, TEXTS)]
    readings = recognizer.recognize(golden + crops, "en")  # 10 crops: two batches
    assert [r.text for r in readings] == TEXTS + TEXTS
    assert all(0.8 < r.confidence <= 1.0 for r in readings)


def test_words_carry_confidences_and_positions_from_character_widths(trocr_engines: EngineSet) -> None:
    image = rendered_samples(["TEA 30.50"], variants=1)[0][1]
    reading = trocr_engines.recognizers["trocr"].recognize([image], "en")[0]
    assert [w.text for w in reading.words] == ["TEA", "30.50"]
    first, second = reading.words
    assert 0.0 == first.x0 < first.x1 < second.x0 < second.x1 == pytest.approx(1.0)
    assert 0.3 < first.x1 < 0.5  # "TEA" is about 40% of the line's advance width
    assert all(0.8 < w.confidence <= 1.0 for w in reading.words)


def test_a_blank_crop_reads_without_failing(trocr_engines: EngineSet) -> None:
    reading = trocr_engines.recognizers["trocr"].recognize([np.full((40, 120, 3), 255, dtype=np.uint8)], "en")[0]
    assert 0.0 <= reading.confidence <= 1.0
    assert all(0.0 <= w.x0 <= w.x1 <= 1.0 for w in reading.words)


def test_empty_input_reads_nothing(trocr_engines: EngineSet) -> None:
    assert trocr_engines.recognizers["trocr"].recognize([], "en") == []


async def test_api_reads_an_upload_with_trocr_as_primary(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], tiny: TinyBundle, trocr_engines: EngineSet,
    tmp_path: Path,
) -> None:
    config: EdgeConfig = load_config(environ=trocr_environ(tiny, tmp_path / "data"))
    client = await aiohttp_client(create_app(config, trocr_engines))
    token = issue_token(SECRET, user_id="clerk-1", shop_id="shop-a", ttl_seconds=600, role="clerk")
    from aiohttp import FormData

    form = FormData()
    form.add_field("image", encode(render_lines(["MILK 45"])), filename="tag.png", content_type="image/png")
    form.add_field("type", "product")
    response = await client.post("/api/v1/ocr/process", data=form, headers={"Authorization": f"Bearer {token}"})
    body = await response.json()
    assert response.status == 200, body
    data = body["data"]
    assert data["text"] == "MILK 45"
    assert data["model_used"] == "trocr"
    assert [w["text"] for w in data["words"]] == ["MILK", "45"]
    assert data["words"][0]["bounding_box"]["x"] < data["words"][1]["bounding_box"]["x"]
    assert data["structured"]["price"] == 45.0


def test_runtime_needs_neither_torch_nor_transformers(tiny: TinyBundle) -> None:
    """The node's engine in a fresh interpreter where importing torch or transformers fails."""
    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "optimum"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import numpy as np
from PIL import Image
from pathlib import Path
from edge_node.engines.trocr_onnx import TrocrConfig, load_trocr
r = load_trocr(TrocrConfig(bundle_dir=Path({str(tiny.bundle)!r}), trusted_keys=(Path({str(tiny.public_key)!r}),)))
image = np.asarray(Image.open(Path({str(tiny.bundle)!r}) / "golden" / "00.png").convert("RGB"))
print(r.recognize([image])[0].text)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == TEXTS[0]


def test_loader_rejects_a_wrong_key(tiny: TinyBundle) -> None:
    with pytest.raises(BundleSignatureError, match="not one of the 1 trusted keys") as caught:
        load_trocr(loader_config(tiny, key=tiny.other_public_key))
    assert isinstance(caught.value, ModelError)


def test_loader_rejects_a_tampered_model_file(tiny: TinyBundle, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny.bundle, bundle)
    model = bundle / "encoder_model.onnx"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="encoder_model.onnx .* does not match its sha256"):
        load_trocr(loader_config(tiny, bundle=bundle))


def test_node_refuses_to_start_on_a_tampered_bundle(tiny: TinyBundle, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny.bundle, bundle)
    (bundle / "tokenizer.json").write_text("{}")
    config = load_config(environ=trocr_environ(tiny, tmp_path / "data", bundle))
    with pytest.raises(ModelError, match="tokenizer.json"):
        build_engines(config.ocr)


def test_self_test_fails_when_a_golden_line_reads_differently(tiny: TinyBundle, tmp_path: Path) -> None:
    """A correctly signed bundle whose golden expectation this node does not reproduce is refused."""
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny.bundle, bundle)
    document = json.loads((bundle / MANIFEST_NAME).read_text())
    document["golden"][1]["expected"] = "TOTAL 121"
    (bundle / MANIFEST_NAME).write_text(json.dumps(document, indent=2) + "\n")
    sign_bundle(bundle, tiny.private_key)
    with pytest.raises(BundleSelfTestError, match="expected 'TOTAL 121', read 'TOTAL 120'"):
        load_trocr(loader_config(tiny, bundle=bundle))


def test_config_requires_a_bundle_and_keys_for_trocr(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ocr.trocr_bundle"):
        load_config(environ={"OCR_MODEL_PRIMARY": "trocr"})
    with pytest.raises(ConfigError, match="ocr.trusted_keys"):
        load_config(environ={"OCR_MODEL_PRIMARY": "trocr", "EDGE_OCR__TROCR_BUNDLE": str(tmp_path)})
    config = load_config(environ={
        "OCR_MODEL_FALLBACK": "trocr", "EDGE_OCR__TROCR_BUNDLE": str(tmp_path),
        "EDGE_OCR__TRUSTED_KEYS": "[/etc/zakpos/a.pem, /etc/zakpos/b.pem]",
    })
    assert config.ocr.trusted_keys == [Path("/etc/zakpos/a.pem"), Path("/etc/zakpos/b.pem")]


def test_golden_images_match_what_the_exporter_rendered(tiny: TinyBundle) -> None:
    recognizer = load_trocr(loader_config(tiny))
    assert isinstance(recognizer, TrocrRecognizer)
    assert recognizer.self_test() == []
    with Image.open(tiny.bundle / "golden" / "00.png") as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), rendered_samples(TEXTS[:1], variants=1)[0][1])


class _Prefixes:
    """A detokenizer whose texts for growing prefixes are given (as a byte-level BPE behaves mid-character)."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.texts[len(ids) - 1]


def test_character_probabilities_follow_growing_prefixes() -> None:
    # token 2 completes a two-token character: the replacement char is re-assigned to the newer token
    text, probs = char_probabilities(_Prefixes(["", "Tk", "Tk \ufffd", "Tk \u09f3", "Tk \u09f3 45"]),
                                     [0, 1, 2, 3, 4], [0.99, 0.9, 0.2, 0.8, 0.7])
    assert text == "Tk \u09f3 45"
    assert probs == [0.9, 0.9, 0.2, 0.8, 0.7, 0.7, 0.7]


def test_line_reading_collapses_spaces_and_halves_a_truncated_line() -> None:
    complete = line_reading("  RICE  5KG ", [0.5, 0.5, 1, 1, 1, 1, 0.9, 0.9, 0.8, 0.8, 0.8, 0.5])
    assert complete.text == "RICE 5KG"
    assert [w.text for w in complete.words] == ["RICE", "5KG"]
    assert complete.confidence == pytest.approx((4 * 1.0 + 3 * 0.8) / 7)
    truncated = line_reading("RICE", [1.0] * 4, complete=False)
    assert truncated.confidence == TRUNCATED_FACTOR and truncated.words[0].confidence == TRUNCATED_FACTOR
    assert line_reading("   ", [1.0] * 3).confidence == 0.0
