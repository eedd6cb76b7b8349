"""Configuration trees from YAML text and the environment, validated into a service's root model.

Pure: callers read the file; this module turns its text plus the environment into a model. Precedence,
highest first: `{PREFIX}SECTION__FIELD` variables, flat aliases (the seed's names), the YAML, the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ENV_NESTED_DELIMITER = "__"

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(Exception):
    """The configuration could not be loaded; `problems` lists `path: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(problems))
        self.problems = problems


def parse_env_value(value: str) -> Any:
    """Environment values are YAML, so `true`, `4`, `null`, `[a, b]` and `{a: b}` work; the rest stays text."""
    try:
        parsed = yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        return value
    # `null` and `{kid: ...}` mappings are meaningful; a YAML date or timestamp stays the text it was.
    return parsed if parsed is None or isinstance(parsed, str | int | float | bool | list | dict) else value


def _set(tree: dict[str, Any], section: str, field: str, value: str) -> None:
    node = tree.setdefault(section, {})
    if not isinstance(node, dict):
        raise ConfigError([f"{section}: must be a mapping"])
    node[field] = parse_env_value(value)


def build_tree(
    yaml_text: str | None,
    environ: Mapping[str, str],
    prefix: str,
    aliases: Mapping[str, tuple[str, str]],
    source: str = "config",
) -> dict[str, Any]:
    """The YAML document overlaid with the aliases and the `{prefix}SECTION__FIELD` variables."""
    tree: dict[str, Any] = {}
    if yaml_text is not None:
        try:
            loaded = yaml.safe_load(yaml_text) or {}
        except yaml.YAMLError as err:
            raise ConfigError([f"{source}: {err}"]) from err
        if not isinstance(loaded, dict):
            raise ConfigError([f"{source}: the top level must be a mapping"])
        tree = loaded
    for name, (section, field) in aliases.items():
        if name in environ:
            _set(tree, section, field, environ[name])
    for name, value in environ.items():
        if name.startswith(prefix) and ENV_NESTED_DELIMITER in name:
            section, _, field = name.removeprefix(prefix).lower().partition(ENV_NESTED_DELIMITER)
            _set(tree, section, field, value)
    return tree


def validate(model: type[ModelT], tree: dict[str, Any]) -> ModelT:
    """The root model, or ConfigError naming each bad field by its dotted path."""
    try:
        return model.model_validate(tree)
    except ValidationError as err:
        raise ConfigError([f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]) from err
