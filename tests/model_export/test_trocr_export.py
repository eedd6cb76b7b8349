"""`model-export trocr | sign | verify | keygen` on a tiny TrOCR model trained here (no hub, no download)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import stat
from pathlib import Path

import pytest
from PIL import Image
from tiny_trocr import TEXTS, TinyBundle, build

from edge_node.engines.bundle import sha256_file
from edge_node.engines.registry import EngineSet
from model_export.__main__ import main
from shared_models.bundle import MANIFEST_NAME, SIGNATURE_NAME, BundleManifest


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory, engines: EngineSet) -> TinyBundle:
    return build(tmp_path_factory.mktemp("tiny-trocr"), engines.detector)


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def tampered_copy(tiny: TinyBundle, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny.bundle, copy)
    return copy


def test_tiny_model_trains_in_seconds(tiny: TinyBundle) -> None:
    assert tiny.train_seconds < 60


def test_manifest_lists_every_file_with_its_sha256(tiny: TinyBundle) -> None:
    manifest = BundleManifest.model_validate_json((tiny.bundle / MANIFEST_NAME).read_bytes())
    assert (manifest.name, manifest.version, manifest.engine, manifest.languages) == (
        "tiny-trocr", "0.1.0", "trocr", ["en"]
    )
    assert manifest.quantization == "int8"
    assert (manifest.input.height, manifest.input.width) == (32, 160)
    assert manifest.decoder.start_token_id == 2 and manifest.decoder.eos_token_id == 2
    roles = {entry.role: entry.path for entry in manifest.files if entry.role != "golden"}
    assert roles == {
        "encoder": "encoder_model.onnx", "decoder": "decoder_model.onnx",
        "decoder_with_past": "decoder_with_past_model.onnx", "tokenizer": "tokenizer.json",
    }
    for entry in manifest.files:
        assert sha256_file(tiny.bundle / entry.path) == entry.sha256
        assert (tiny.bundle / entry.path).stat().st_size == entry.size
    on_disk = {p.relative_to(tiny.bundle).as_posix() for p in tiny.bundle.rglob("*") if p.is_file()}
    assert on_disk == {entry.path for entry in manifest.files} | {MANIFEST_NAME, SIGNATURE_NAME}
    assert not (tiny.bundle / "decoder_model_merged.onnx").exists()


def test_golden_cases_are_rendered_pngs_read_back_exactly(tiny: TinyBundle) -> None:
    manifest = BundleManifest.model_validate_json((tiny.bundle / MANIFEST_NAME).read_bytes())
    assert [case.source_text for case in manifest.golden] == TEXTS
    assert [case.expected for case in manifest.golden] == TEXTS
    for case in manifest.golden:
        with Image.open(tiny.bundle / case.image) as image:
            assert image.format == "PNG" and image.height < 64


def test_quantised_models_are_int8(tiny: TinyBundle) -> None:
    import onnx

    model = onnx.load(str(tiny.bundle / "decoder_model.onnx"))
    ops = {node.op_type for node in model.graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops


def test_verify_accepts_the_signed_bundle(tiny: TinyBundle) -> None:
    code, out, _ = run_cli("verify", "--pubkey", str(tiny.public_key), str(tiny.bundle))
    assert code == 0
    assert out.startswith("OK: tiny-trocr 0.1.0 (trocr, ")


def test_verify_rejects_a_wrong_key(tiny: TinyBundle) -> None:
    code, _, err = run_cli("verify", "--pubkey", str(tiny.other_public_key), str(tiny.bundle))
    assert code == 1
    assert "which is not one of the 1 trusted keys" in err


def test_verify_accepts_any_of_several_keys(tiny: TinyBundle) -> None:
    code, _, _ = run_cli(
        "verify", "--pubkey", str(tiny.other_public_key), "--pubkey", str(tiny.public_key), str(tiny.bundle)
    )
    assert code == 0


def test_verify_rejects_one_changed_byte_in_a_model(tiny: TinyBundle, tmp_path: Path) -> None:
    bundle = tampered_copy(tiny, tmp_path)
    model = bundle / "decoder_with_past_model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    code, _, err = run_cli("verify", "--pubkey", str(tiny.public_key), str(bundle))
    assert code == 1
    assert "decoder_with_past_model.onnx" in err and "does not match its sha256" in err


def test_verify_rejects_an_edited_manifest(tiny: TinyBundle, tmp_path: Path) -> None:
    bundle = tampered_copy(tiny, tmp_path)
    document = json.loads((bundle / MANIFEST_NAME).read_text())
    document["version"] = "9.9.9"
    (bundle / MANIFEST_NAME).write_text(json.dumps(document, indent=2) + "\n")
    code, _, err = run_cli("verify", "--pubkey", str(tiny.public_key), str(bundle))
    assert code == 1
    assert "does not match its manifest.json" in err


def test_verify_rejects_an_unsigned_bundle(tiny: TinyBundle, tmp_path: Path) -> None:
    bundle = tampered_copy(tiny, tmp_path)
    (bundle / SIGNATURE_NAME).unlink()
    code, _, err = run_cli("verify", "--pubkey", str(tiny.public_key), str(bundle))
    assert code == 1 and "manifest.sig is missing" in err


def test_sign_refuses_a_bundle_whose_files_changed(tiny: TinyBundle, tmp_path: Path) -> None:
    bundle = tampered_copy(tiny, tmp_path)
    (bundle / "tokenizer.json").write_text("{}")
    code, _, err = run_cli("sign", "--key", str(tiny.private_key), str(bundle))
    assert code == 1 and "refusing to sign" in err and "tokenizer.json" in err


def test_keygen_keeps_the_private_key_private_and_refuses_to_overwrite(tmp_path: Path) -> None:
    code, out, _ = run_cli("keygen", "--out", str(tmp_path), "--name", "shop")
    assert code == 0 and "shop.pub" in out
    assert stat.S_IMODE((tmp_path / "shop.key").stat().st_mode) == 0o600
    assert (tmp_path / "shop.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    code, _, err = run_cli("keygen", "--out", str(tmp_path), "--name", "shop")
    assert code == 1 and "exists" in err


def test_export_refuses_to_overwrite_a_bundle(tiny: TinyBundle) -> None:
    code, _, err = run_cli("--quiet", "trocr", "--model", str(tiny.checkpoint), "--out", str(tiny.bundle))
    assert code == 1 and "--force" in err


def test_export_of_something_that_is_not_trocr_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    code, _, err = run_cli("--quiet", "trocr", "--model", str(tmp_path), "--out", str(tmp_path / "out"))
    assert code == 1 and "vision-encoder-decoder" in err
    assert not (tmp_path / "out").exists()


def test_hub_id_without_hub_access_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test downloads anything: offline mode is forced, so this proves the message, not the download."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    code, _, err = run_cli("--quiet", "trocr", "--model", "microsoft/trocr-small-printed", "--out", str(tmp_path / "b"))
    assert code == 1
    assert "cannot fetch microsoft/trocr-small-printed" in err and "pass its folder" in err


def test_embedding_quantisation_needs_int8(tiny: TinyBundle, tmp_path: Path) -> None:
    code, _, err = run_cli("--quiet", "trocr", "--model", str(tiny.checkpoint), "--out", str(tmp_path / "b"),
                           "--quantize-embeddings")
    assert code == 1 and "needs --quantize int8" in err
