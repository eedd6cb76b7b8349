"""The shared config loader: environment values are YAML with dates kept as text."""

from __future__ import annotations

import pytest

from shared_models.settings import ConfigError, build_tree, parse_env_value


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("true", True), ("4", 4), ("null", None), ("[a, b]", ["a", "b"]), ("{k1: {secret: s}}", {"k1": {"secret": "s"}}),
     ("mqtt://broker:1883", "mqtt://broker:1883"), ("2026-12-01", "2026-12-01"), ("", ""), ("a: [", "a: [")],
)
def test_env_values(raw: str, parsed: object) -> None:
    assert parse_env_value(raw) == parsed


def test_precedence_and_errors() -> None:
    tree = build_tree("server:\n  port: 1\n", {"X_SERVER__PORT": "3", "PORT": "2"}, "X_", {"PORT": ("server", "port")})
    assert tree == {"server": {"port": 3}}
    with pytest.raises(ConfigError):
        build_tree("- a list\n", {}, "X_", {})
