"""Config loading: defaults, YAML, seed variable names, EDGE_* overrides, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_node.config import ConfigError, EdgeConfig, load_config


def test_defaults_serve_the_lan_with_bundled_engines() -> None:
    config = load_config(environ={})
    assert (config.server.host, config.server.port) == ("0.0.0.0", 8000)
    assert config.storage.database_path == Path("data/edge.sqlite3")
    assert (config.ocr.primary, config.ocr.fallback, config.ocr.primary_bn) == ("ppocr", "tesseract", "tesseract")
    assert config.limits.max_image_size_mb == 10
    assert config.worker.processing_timeout_seconds == 30


def test_seed_names_and_nested_overrides(tmp_path: Path) -> None:
    yaml_file = tmp_path / "edge.yaml"
    yaml_file.write_text("server:\n  port: 9000\nocr:\n  fallback: null\n")
    config = load_config(
        yaml_file,
        environ={
            "MAX_IMAGE_SIZE_MB": "5",
            "PROCESSING_TIMEOUT_SECONDS": "12",
            "OCR_MODEL_PRIMARY": "tesseract",
            "ENABLE_GPU": "true",
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "EDGE_SERVER__PORT": "9100",
            "EDGE_SERVER__CORS_ORIGINS": "[http://tablet.local]",
        },
    )
    assert config.server.port == 9100  # EDGE_* beats YAML
    assert config.ocr.fallback is None  # from YAML
    assert config.limits.max_image_size_mb == 5
    assert config.worker.processing_timeout_seconds == 12
    assert config.ocr.primary == "tesseract"
    assert config.ocr.enable_gpu is True
    assert config.storage.database_path == tmp_path / "x.db"
    assert config.server.cors_origins == ["http://tablet.local"]


def test_errors_name_each_field_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"EDGE_SERVER__PORT": "99999", "OCR_MODEL_PRIMARY": "nope", "EDGE_SERVER__BOGUS": "1"})
    text = "\n".join(caught.value.problems)
    assert "server.port" in text
    assert "ocr.primary" in text
    assert "server.bogus" in text


def test_every_field_has_a_description() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if not field.description:
                missing.append(f"{model.__name__}.{name}")
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                missing += walk(annotation)
        return missing

    assert walk(EdgeConfig) == []
