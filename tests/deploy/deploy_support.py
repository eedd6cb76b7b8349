"""Shared helpers of the deployment tests: what the code accepts (env names, ports, routes, console scripts) and
parsers for what the deployment files say (Dockerfiles, compose interpolation, shell command lines).

Everything "the code accepts" is derived from the code itself, so a renamed field or route breaks the
deployment tests instead of silently breaking a deployment.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from shared_models.settings import ENV_NESTED_DELIMITER

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
COMPOSE_ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
K8S_DIR = COMPOSE_DIR / "k8s"
MOSQUITTO_DIR = COMPOSE_DIR / "mosquitto"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DOCKERFILES = {"edge": ROOT / "Dockerfile.edge", "central": ROOT / "Dockerfile.central"}

#: Variables the Dockerfiles may set for the interpreter and pip rather than for our config loaders.
RUNTIME_ENV = frozenset(
    {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
)
#: Options every console script takes before its subcommand, and whether they take a value.
GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--config", "--log-level"})


@dataclass(frozen=True)
class RunningEdge:
    """A real edge app serving for the tests (fixture `running_edge`): its port and an admin token of its shop."""

    port: int
    token: str
    data_dir: Path

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"


# ---- what the code accepts --------------------------------------------------------------------------------------
def _nested_env_names(prefix: str, delimiter: str, root: type[BaseModel]) -> set[str]:
    """PREFIX + SECTION + delimiter + FIELD for every field of every section model of `root`."""
    names = set()
    for section, info in root.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), f"{root.__name__}.{section} is no section"
        names |= {f"{prefix}{section}{delimiter}{field}".upper() for field in model.model_fields}
    return names


@functools.cache
def edge_env_names() -> frozenset[str]:
    """Every environment variable edge_node.config.load_config reads."""
    from edge_node import config

    nested = _nested_env_names(config.ENV_PREFIX, ENV_NESTED_DELIMITER, config.EdgeConfig)
    return frozenset(nested | set(config.SEED_ENV))


@functools.cache
def central_env_names() -> frozenset[str]:
    """Every environment variable central_sync.config.load_config reads."""
    from central_sync import config

    nested = _nested_env_names(config.ENV_PREFIX, ENV_NESTED_DELIMITER, config.CentralConfig)
    return frozenset(nested | set(config.FLAT_ENV))


def env_names(kind: str) -> frozenset[str]:
    """The variables of service `kind` (edge or central)."""
    return {"edge": edge_env_names, "central": central_env_names}[kind]()


def load_service_config(kind: str, environ: Mapping[str, str]) -> Any:
    """The service's config built from `environ` alone (raises the loader's ConfigError when invalid)."""
    if kind == "edge":
        from edge_node.config import load_config as load_edge

        return load_edge(environ=environ)
    from central_sync.config import load_config as load_central

    return load_central(environ=environ)


def default_port(kind: str) -> int:
    """The listen port of a service with no configuration."""
    if kind == "edge":
        from edge_node.config import ServerConfig

        return int(ServerConfig.model_fields["port"].default)
    from central_sync.config import HttpConfig

    return int(HttpConfig.model_fields["port"].default)


def project() -> dict[str, Any]:
    """pyproject.toml's [project] table."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def console_scripts() -> dict[str, str]:
    """Console script name -> entry point."""
    return dict(project()["scripts"])


#: The console script of each service.
SERVICE_SCRIPT = {"edge": "edge-node", "central": "central-sync"}


@functools.cache
def script_help(script: str, subcommand: str | None = None) -> str:
    """`script [subcommand] --help`, run as the installed console script in a subprocess."""
    binary = Path(sys.executable).parent / script
    assert binary.exists(), f"console script {script} is not installed in {binary.parent}"
    argv = [str(binary), *([subcommand] if subcommand else []), "--help"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed: {done.stderr}"
    return done.stdout


def subcommands(script: str) -> set[str]:
    """The subcommands argparse lists in `script --help` ({serve,token,ocr})."""
    match = re.search(r"\{([\w,-]+)\}", script_help(script))
    assert match, f"no subcommand list in `{script} --help`"
    return set(match.group(1).split(","))


def check_invocation(argv: list[str]) -> None:
    """`argv` calls a console script of this project with a real subcommand and options that subcommand has."""
    script, rest = argv[0], argv[1:]
    assert script in console_scripts(), f"{script} is not a console script in pyproject.toml"
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        name = option.split("=", 1)[0]
        assert name in GLOBAL_OPTIONS_WITH_VALUE or name in ("-h", "--help"), f"{script}: unknown option {option}"
        if name in GLOBAL_OPTIONS_WITH_VALUE and "=" not in option:
            rest.pop(0)
    assert rest, f"{argv}: no subcommand"
    subcommand, options = rest[0], rest[1:]
    assert subcommand in subcommands(script), f"`{script} {subcommand}`: no such subcommand ({subcommands(script)})"
    help_text = script_help(script, subcommand)
    for option in options:
        if option.startswith("--"):
            name = option.split("=", 1)[0]
            assert re.search(rf"(^|[\s,\[]){re.escape(name)}\b", help_text), f"`{script} {subcommand}` has no {name}"


def script_invocations(argv: list[str]) -> Iterator[list[str]]:
    """The simple commands of an exec-form command line; `sh -c 'a && exec b'` yields a and b."""
    if not argv:
        return
    if Path(argv[0]).name in ("sh", "bash") and len(argv) >= 3 and argv[1] == "-c":
        lexer = shlex.shlex(argv[2], posix=True, punctuation_chars=";&|")
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in (";", "&&", "||", "&", "|"):
                if command:
                    yield command[1:] if command[0] == "exec" else command
                command = []
            else:
                command.append(token)
        return
    yield argv


# ---- routes -----------------------------------------------------------------------------------------------------
def _paths(app: Any) -> set[str]:
    return {resource.canonical for resource in app.router.resources()}


def edge_routes(data_dir: Path) -> set[str]:
    """Canonical paths the edge app serves (the app is built, not started)."""
    from edge_node.app import create_app
    from edge_node.config import load_config

    config = load_config(environ={"EDGE_STORAGE__DATA_DIR": str(data_dir), "EDGE_JWT_SECRET": "x" * 48})
    return _paths(create_app(config))


def central_routes() -> set[str]:
    """Canonical paths the central app serves (nothing connects until it starts)."""
    from central_sync.app import create_app
    from central_sync.config import load_config

    return _paths(create_app(load_config(environ={})))


# ---- Dockerfiles ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its continuation lines joined."""

    keyword: str
    value: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD, or None for the shell form."""
        text = self.value
        if self.keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1] if " CMD " in f" {text}" else ""
        text = text.strip()
        if not text.startswith("["):
            return None
        loaded = json.loads(text)  # Docker's exec form is a JSON array; anything else runs as a shell string
        assert isinstance(loaded, list), f"{self.keyword}: not a JSON array: {text}"
        return [str(item) for item in loaded]


def dockerfile(kind: str) -> list[Instruction]:
    """Instructions of Dockerfile.<kind>, comments dropped, continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in DOCKERFILES[kind].read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, value = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip()))
    assert not pending, f"Dockerfile.{kind} ends inside a continued line"
    return instructions


def dockerfile_env(kind: str) -> dict[str, str]:
    """Variables set by ENV (KEY=VALUE form)."""
    env: dict[str, str] = {}
    for instruction in dockerfile(kind):
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.value):
                key, sep, value = pair.partition("=")
                assert sep, f"Dockerfile.{kind}: use ENV KEY=VALUE, not {instruction.value!r}"
                env[key] = value
    return env


# ---- compose ----------------------------------------------------------------------------------------------------
_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolation_names(text: str) -> set[str]:
    """Names of the ${VARIABLES} compose substitutes in `text`."""
    return {m.group("name") for m in _INTERPOLATION.finditer(text) if m.group("name")}


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's substitution: ${V}, ${V:-default}, ${V-default}, ${V:?error}, ${V?error}, and $$ for $."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        present = name in env
        value = env.get(name, "")
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if present else arg
        if op in (":?", "?") and (not present or (op == ":?" and not value)):
            raise AssertionError(f"compose would stop: {name} is required ({arg})")
        return value

    return _INTERPOLATION.sub(one, value)


def env_example() -> dict[str, str]:
    """compose/.env.example as a mapping (what an operator starts from)."""
    values = {}
    for line in COMPOSE_ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: bad line {line!r}"
            values[key.strip()] = value.strip()
    return values


@functools.cache
def compose() -> dict[str, Any]:
    """The compose file, parsed."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def compose_service_kind(service: dict[str, Any]) -> str | None:
    """edge / central for a service built from one of our Dockerfiles, else None."""
    build = service.get("build")
    if isinstance(build, dict):
        name = Path(str(build.get("dockerfile", ""))).name
        for kind, path in DOCKERFILES.items():
            if name == path.name:
                return kind
    return None


def compose_environment(service: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """A service's `environment` (mapping or list form), interpolated."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(k): interpolate(str(v), env) for k, v in raw.items()}


# ---- kubernetes -------------------------------------------------------------------------------------------------
def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every object in compose/k8s/*.yaml with the file it comes from."""
    documents = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                documents.append((path, document))
    return documents


def image_kind(image: str) -> str | None:
    """edge / central for our images (zakpos/edge:TAG, zakpos/central:TAG)."""
    repository = image.rsplit(":", 1)[0]
    return {"zakpos/edge": "edge", "zakpos/central": "central"}.get(repository)
