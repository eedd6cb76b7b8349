"""Config: defaults, YAML, CENTRAL_* and seed variables with their precedence, and refusal of unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from central_sync.__main__ import main
from central_sync.config import CentralConfig, load_config
from central_sync.errors import ConfigError


def test_defaults_need_no_config() -> None:
    config = load_config(environ={})
    assert config.database.url.startswith("postgresql+asyncpg://")
    assert config.mqtt.url == "mqtt://127.0.0.1:1883" and config.mqtt.client_id.startswith("central-")
    assert config.kafka.bootstrap == "127.0.0.1:9092" and config.kafka.topic_completed == "ocr.completed"
    assert config.topic_for("failed") == "ocr.failed" and config.topic_for("metrics") == "ocr.metrics"


def test_environment_names_and_precedence(tmp_path: Path) -> None:
    yaml_file = tmp_path / "central.yaml"
    yaml_file.write_text("database:\n  url: postgresql://yaml@db/x\nmqtt:\n  client_id: from-yaml\n")
    config = load_config(yaml_file, environ={
        "DATABASE_URL": "postgresql://seed@db/x",
        "CENTRAL_MQTT_URL": "mqtts://broker:8883",
        "CENTRAL_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
        "CENTRAL_INGEST__BATCH_MAX_MESSAGES": "250",
        "CENTRAL_KAFKA__ENABLED": "false",
    })
    assert config.database.url == "postgresql+asyncpg://seed@db/x"
    assert config.mqtt.url == "mqtts://broker:8883" and config.mqtt.client_id == "from-yaml"
    assert config.kafka.bootstrap == "k1:9092,k2:9092" and config.kafka.enabled is False
    assert config.ingest.batch_max_messages == 250

    both = load_config(environ={"DATABASE_URL": "postgresql://seed@db/x", "CENTRAL_DATABASE_URL": "postgres://c@db/y"})
    assert both.database.url == "postgresql+asyncpg://c@db/y"
    nested = load_config(environ={"CENTRAL_DATABASE_URL": "postgresql://c@db/y", "CENTRAL_DATABASE__URL": "postgresql://n@db/z"})
    assert nested.database.url == "postgresql+asyncpg://n@db/z"


@pytest.mark.parametrize(
    ("environ", "path"),
    [
        ({"CENTRAL_MQTT__COLOUR": "blue"}, "mqtt.colour"),
        ({"CENTRAL_DATABASE_URL": "mysql://x/y"}, "database.url"),
        ({"CENTRAL_MQTT_URL": "http://broker"}, "mqtt.url"),
        ({"CENTRAL_INGEST__BATCH_MAX_MESSAGES": "0"}, "ingest.batch_max_messages"),
    ],
)
def test_bad_values_name_their_field(environ: dict[str, str], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ=environ)
    assert any(problem.startswith(path) for problem in caught.value.problems)


def test_every_field_has_a_description() -> None:
    def walk(model: type[BaseModel], prefix: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(prefix + name)
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                missing += walk(annotation, f"{prefix}{name}.")
        return missing

    assert walk(CentralConfig, "") == []


def test_cli_prints_each_bad_field_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kafka:\n  partitions: 0\n  nope: 1\n")
    assert main(["--config", str(bad), "migrate"]) == 2
    err = capsys.readouterr().err
    assert "kafka.partitions" in err and "kafka.nope" in err
