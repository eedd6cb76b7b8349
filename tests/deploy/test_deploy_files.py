"""Dockerfiles, the compose file and the Kubernetes manifests agree with the code.

Docker does not run on the test machines, so these files are parsed (Dockerfiles as text, the rest with PyYAML)
and every claim they make is checked against the code: the ports are the config defaults, every environment
variable is one the config loaders read (and the values load), every command is a console script with a real
subcommand and real options, health paths are routes that answer without a token, and the data volume is where
the node writes. The healthcheck commands themselves are run against a real edge app.
"""

from __future__ import annotations

import fnmatch
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.deploy_support import (
    COMPOSE_DIR,
    COMPOSE_FILE,
    K8S_DIR,
    MOSQUITTO_DIR,
    ROOT,
    RUNTIME_ENV,
    SERVICE_SCRIPT,
    RunningEdge,
    central_routes,
    check_invocation,
    compose,
    compose_environment,
    compose_service_kind,
    default_port,
    dockerfile,
    dockerfile_env,
    edge_routes,
    env_example,
    env_names,
    image_kind,
    interpolation_names,
    k8s_documents,
    load_service_config,
    project,
    script_invocations,
)

KINDS = ("edge", "central")
#: Packages each image needs besides shared_models.
PACKAGES = {"edge": "edge_node", "central": "central_sync"}
#: Debian 12's tesseract-ocr puts traineddata here; it is the ocr.tessdata_dir default.
BOOKWORM_TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")
#: Where the eclipse-mosquitto image reads its config and keeps its data.
MOSQUITTO_CONFIG_DIR = "/mosquitto/config/"


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Paths each service really serves."""
    return {"edge": edge_routes(tmp_path_factory.mktemp("routes") / "data"), "central": central_routes()}


def _healthcheck_url(argv: list[str]) -> str:
    """The URL a `python -c "...urlopen('URL'...)"` healthcheck fetches; the snippet must compile."""
    assert argv[:2] == ["python", "-c"], f"healthchecks use python (no curl in the slim image): {argv}"
    compile(argv[2], "<healthcheck>", "exec")
    urls = [token for token in shlex.split(argv[2].replace("(", " ").replace(",", " ")) if "://" in token]
    assert len(urls) == 1, f"one URL expected in {argv[2]!r}"
    return urls[0]


def _check_health_url(url: str, kind: str, routes: dict[str, set[str]]) -> None:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port == default_port(kind), url
    assert parts.path in routes[kind], f"{url}: {parts.path} is not a route of {kind}"


def _run_healthcheck(argv: list[str], edge: RunningEdge, port: int | None = None) -> int:
    """Run the healthcheck snippet against the test node (its port substituted for the default)."""
    snippet = argv[2].replace(f"127.0.0.1:{default_port('edge')}", f"127.0.0.1:{port or edge.port}")
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, timeout=30, check=False)
    return done.returncode


# ---- Dockerfiles ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_dockerfile_base_user_and_architecture(kind: str) -> None:
    instructions = dockerfile(kind)
    froms = [i.value for i in instructions if i.keyword == "FROM"]
    assert len(froms) == 1 and froms[0].startswith("python:3.11-slim"), froms
    users = [i.value for i in instructions if i.keyword == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), "the service must not run as root"
    last_user = max(n for n, i in enumerate(instructions) if i.keyword == "USER")
    cmd = max(n for n, i in enumerate(instructions) if i.keyword == "CMD")
    assert last_user < cmd
    text = " ".join(f"{i.keyword} {i.value}" for i in instructions).lower()  # instructions, not comments
    for x86_only in ("amd64", "x86_64", "x86-64", "--platform", "i386"):
        assert x86_only not in text, f"Dockerfile.{kind} names {x86_only}: keep it arm64-friendly"


def test_edge_dockerfile_installs_tesseract_data_where_the_config_looks() -> None:
    from edge_node.config import OcrConfig

    runs = " ".join(i.value for i in dockerfile("edge") if i.keyword == "RUN")
    install = next(part for part in runs.split("&&") if "apt-get install" in part)
    packages = set(shlex.split(install))
    assert {"tesseract-ocr", "tesseract-ocr-eng", "tesseract-ocr-ben", "libzbar0"} <= packages
    assert "--no-install-recommends" in packages and "rm -rf /var/lib/apt/lists/*" in runs
    base = next(i.value for i in dockerfile("edge") if i.keyword == "FROM")
    # Debian 13 moves to libzbar0t64 and may move the traineddata: the config default is Debian 12's path.
    assert "bookworm" in base, f"{base}: pin the Debian release the package names and tessdata path belong to"
    assert OcrConfig.model_fields["tessdata_dir"].default == BOOKWORM_TESSDATA


@pytest.mark.parametrize("kind", KINDS)
def test_dockerfile_installs_the_package_with_the_lock(kind: str) -> None:
    pips = [shlex.split(i.value) for i in dockerfile(kind) if i.keyword == "RUN" and "pip install" in i.value]
    assert len(pips) == 1, pips
    argv = pips[0]
    assert argv[argv.index("-c") + 1] == "requirements.lock"
    assert f".[{kind}]" in argv
    assert kind in project()["optional-dependencies"]


def _dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip().lstrip("/") for line in lines if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not supported by this check"
    return patterns


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Docker drops a path when it or one of its parent folders matches a pattern."""
    parts = PurePosixPath(relative).parts
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        for pattern in patterns:
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatchcase(prefix, pattern[3:]):
                return True
    return False


@pytest.mark.parametrize("kind", KINDS)
def test_dockerfile_copies_what_the_build_needs(kind: str) -> None:
    patterns = _dockerignore_patterns()
    sources: list[str] = []
    for instruction in dockerfile(kind):
        if instruction.keyword == "COPY":
            args = [a for a in shlex.split(instruction.value) if not a.startswith("--")]
            sources += args[:-1]
    readme = project()["readme"]
    assert {"pyproject.toml", "requirements.lock", readme, "shared_models", PACKAGES[kind]} <= set(sources)
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: missing"
        assert not _ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
        files = [path] if path.is_file() else [
            p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            assert not _ignored(relative, patterns), f"{relative}: excluded by .dockerignore"
    for secret in (".env", "compose/.env", ".venv", ".git", "data"):
        assert _ignored(secret, patterns), f"{secret} would be sent to the Docker daemon"


@pytest.mark.parametrize("kind", KINDS)
def test_dockerfile_env_is_read_by_the_config_loader(kind: str) -> None:
    env = dockerfile_env(kind)
    unknown = set(env) - env_names(kind) - RUNTIME_ENV
    assert not unknown, f"Dockerfile.{kind} sets variables no loader reads: {unknown}"
    load_service_config(kind, {k: v for k, v in env.items() if k not in RUNTIME_ENV})


@pytest.mark.parametrize("kind", KINDS)
def test_dockerfile_commands_are_console_scripts(kind: str) -> None:
    commands = []
    for instruction in dockerfile(kind):
        if instruction.keyword in ("CMD", "ENTRYPOINT"):
            argv = instruction.exec_form()
            assert argv is not None, f"{instruction.keyword} must use the exec form (signals reach the service)"
            commands += list(script_invocations(argv))
    for argv in commands:
        check_invocation(argv)
    invoked = [argv[:2] for argv in commands]
    assert [SERVICE_SCRIPT[kind], "serve"] in invoked
    if kind == "central":
        assert invoked == [["central-sync", "migrate"], ["central-sync", "serve"]]


@pytest.mark.parametrize("kind", KINDS)
def test_dockerfile_port_and_healthcheck(kind: str, routes: dict[str, set[str]]) -> None:
    instructions = dockerfile(kind)
    assert [i.value for i in instructions if i.keyword == "EXPOSE"] == [str(default_port(kind))]
    checks = [i for i in instructions if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    argv = checks[0].exec_form()
    assert argv is not None
    _check_health_url(_healthcheck_url(argv), kind, routes)


def test_edge_healthcheck_passes_on_a_running_node_and_fails_without_one(running_edge: RunningEdge) -> None:
    from tests.services import free_port

    argv = next(i for i in dockerfile("edge") if i.keyword == "HEALTHCHECK").exec_form()
    assert argv is not None
    assert _run_healthcheck(argv, running_edge) == 0
    assert _run_healthcheck(argv, running_edge, port=free_port()) != 0


def test_edge_dockerfile_volume_is_the_data_dir() -> None:
    instructions = dockerfile("edge")
    volumes = [v for i in instructions if i.keyword == "VOLUME" for v in shlex.split(i.value.strip("[]"))]
    cmd = next(i for i in instructions if i.keyword == "CMD").exec_form()
    assert cmd is not None
    data_dir = cmd[cmd.index("--data-dir") + 1]
    assert volumes == [data_dir]
    config = load_service_config("edge", {k: v for k, v in dockerfile_env("edge").items() if k not in RUNTIME_ENV})
    assert config.storage.data_dir == Path(data_dir), "`edge-node token` (no --data-dir) must find the same dir"
    assert config.storage.database_path.is_relative_to(data_dir) and config.storage.key_path.is_relative_to(data_dir)


# ---- compose ----------------------------------------------------------------------------------------------------
def _services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def _service_of(kind: str) -> dict[str, Any]:
    matches = [s for s in _services().values() if compose_service_kind(s) == kind]
    assert len(matches) == 1, f"one compose service built from Dockerfile.{kind}"
    return matches[0]


def test_compose_services_and_images() -> None:
    services = _services()
    assert set(services) == {"edge", "central", "mosquitto", "postgres", "kafka"}
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert services["postgres"]["image"] == "postgres:15"
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    roles = set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(","))
    assert roles == {"broker", "controller"}, "single-node KRaft: one process is broker and controller"
    assert not any("ZOOKEEPER" in name for name in kafka["environment"])
    version = project()["version"]
    for kind in KINDS:
        service = _service_of(kind)
        assert (COMPOSE_DIR / service["build"]["context"]).resolve() == ROOT
        assert service["image"] == f"zakpos/{kind}:{version}"


def test_compose_interpolations_are_defined() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    defaults = {name for name in interpolation_names(text) if f"${{{name}:-" in text or f"${{{name}-" in text}
    undefined = interpolation_names(text) - set(env_example()) - defaults
    assert not undefined, f"set in compose/.env.example or give a default: {undefined}"


@pytest.mark.parametrize("kind", KINDS)
def test_compose_environment_is_read_and_valid(kind: str, tmp_path: Path) -> None:
    environment = compose_environment(_service_of(kind), env_example())
    unknown = set(environment) - env_names(kind)
    assert not unknown, f"compose sets variables the {kind} loader never reads: {unknown}"
    config = load_service_config(kind, environment)
    acl = (MOSQUITTO_DIR / "acl").read_text(encoding="utf-8")
    if kind == "edge":
        assert config.sync.enabled and urlsplit(config.sync.broker_url).hostname in _services()
        assert config.sync.username == config.node.node_id, "the ACL patterns use %u = the node id"
        assert config.storage.database_path.is_relative_to(_edge_volume_target())
        from edge_node.auth import load_or_create_secret

        secret, generated = load_or_create_secret(config.auth.jwt_secret, tmp_path)
        assert secret and generated == (not environment["EDGE_JWT_SECRET"]), "an empty secret means: generate one"
    else:
        assert urlsplit(config.mqtt.url).hostname in _services()
        assert f"user {config.mqtt.username}" in acl.splitlines()
        assert "CENTRAL_MQTT__CLIENT_ID" in environment, "a stable client id keeps the persistent session"
        assert urlsplit(config.database.url).hostname in _services()
        assert config.kafka.bootstrap.split(":")[0] in _services()


def _edge_volume_target() -> str:
    targets = [v.split(":")[1] for v in _service_of("edge")["volumes"] if not v.startswith((".", "/"))]
    assert len(targets) == 1
    return targets[0]


def test_compose_edge_volume_is_where_the_node_writes() -> None:
    from edge_node.config import EdgeConfig

    service = _service_of("edge")
    environment = compose_environment(service, env_example())
    config = load_service_config("edge", {**_edge_image_env(), **environment})  # compose overrides the image
    command = service.get("command") or next(i for i in dockerfile("edge") if i.keyword == "CMD").exec_form()
    assert isinstance(command, list)
    data_dir = command[command.index("--data-dir") + 1] if "--data-dir" in command else str(config.storage.data_dir)
    assert data_dir == _edge_volume_target()
    config = config.model_copy(update={"storage": config.storage.model_copy(update={"data_dir": Path(data_dir)})})
    assert isinstance(config, EdgeConfig)
    for path in (config.storage.database_path, config.storage.key_path, config.storage.data_dir / "images"):
        assert path.is_relative_to(data_dir), f"{path} is outside the volume"


def _edge_image_env() -> dict[str, str]:
    return {k: v for k, v in dockerfile_env("edge").items() if k not in RUNTIME_ENV}


@pytest.mark.parametrize("kind", KINDS)
def test_compose_ports_and_healthchecks(kind: str, routes: dict[str, set[str]]) -> None:
    service = _service_of(kind)
    container_ports = {int(str(p).rsplit(":", 1)[-1]) for p in service["ports"]}
    assert container_ports == {default_port(kind)}
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD"
    _check_health_url(_healthcheck_url(test[1:]), kind, routes)


def test_compose_edge_healthcheck_passes_on_a_running_node(running_edge: RunningEdge) -> None:
    assert _run_healthcheck(_service_of("edge")["healthcheck"]["test"][1:], running_edge) == 0


def test_compose_depends_on_conditions() -> None:
    services = _services()
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            assert spec["condition"] in conditions
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
    central = services["central"]["depends_on"]
    assert central["postgres"]["condition"] == "service_healthy", "`central-sync migrate` needs the database"


def test_compose_volumes_and_mosquitto_mounts() -> None:
    services, declared = _services(), set(compose().get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: named volume {source} is not declared"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["mosquitto"]["volumes"]}
    conf = (MOSQUITTO_DIR / "mosquitto.conf").read_text(encoding="utf-8")
    for line in conf.splitlines():
        words = line.split()
        if words and not words[0].startswith("#") and len(words) > 1 and words[1].startswith(MOSQUITTO_CONFIG_DIR):
            assert words[1] in mounts, f"mosquitto.conf reads {words[1]}, which compose does not mount"
        if words[:1] == ["persistence_location"]:
            assert words[1].rstrip("/") in mounts, "the broker's persistence must live on a volume"
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./mosquitto/mosquitto.conf"


def test_mosquitto_healthcheck_reads_what_its_acl_allows() -> None:
    test = _services()["mosquitto"]["healthcheck"]["test"]
    topic = test[test.index("-t") + 1].replace("$$", "$")
    port = test[test.index("-p") + 1]
    conf = (MOSQUITTO_DIR / "mosquitto.conf").read_text(encoding="utf-8")
    assert f"listener {port} 127.0.0.1" in conf
    assert f"topic read {topic}" in (MOSQUITTO_DIR / "acl-healthcheck").read_text(encoding="utf-8")


# ---- kubernetes -------------------------------------------------------------------------------------------------
def _objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _path, doc in k8s_documents() if doc["kind"] == kind]


def _by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _objects(kind)}


def test_k8s_objects_are_well_formed_and_listed() -> None:
    for path, doc in k8s_documents():
        assert {"apiVersion", "kind"} <= set(doc), path
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"], path
    kustomization = _objects("Kustomization")[0]
    listed = set(kustomization["resources"])
    for resource in listed:
        assert (K8S_DIR / resource).exists(), resource
    unlisted = {p.name for p in K8S_DIR.glob("*.yaml")} - listed - {"kustomization.yaml"}
    assert unlisted == {"secrets.example.yaml"}, "only the example secrets stay out of the kustomization"


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in _objects("Deployment")]


def test_k8s_references_resolve() -> None:
    config_maps, secrets, claims = _by_name("ConfigMap"), _by_name("Secret"), _by_name("PersistentVolumeClaim")
    for name, pod in _pod_specs():
        for container in pod.get("initContainers", []) + pod["containers"]:
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps, f"{name}: unknown ConfigMap"
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]["stringData"], f"{name}: {ref} not in the Secret"
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_k8s_selectors_and_service_ports() -> None:
    deployments = _objects("Deployment")
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in _objects("Service"):
        selector = service["spec"]["selector"]
        targets = [d for d in deployments if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(targets) == 1, f"Service {service['metadata']['name']} selects {len(targets)} Deployments"
        ports = {p["name"]: p["containerPort"] for c in targets[0]["spec"]["template"]["spec"]["containers"]
                 for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports or port["targetPort"] in ports.values()
            assert port["port"] == ports.get(port["targetPort"], port["targetPort"])


def _container_env(container: dict[str, Any]) -> dict[str, str]:
    config_maps, secrets = _by_name("ConfigMap"), _by_name("Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        env[var["name"]] = secrets[ref["name"]]["stringData"][ref["key"]] if ref else var["value"]
    return env


def test_k8s_containers_agree_with_the_code(routes: dict[str, set[str]]) -> None:
    version = project()["version"]
    seen = set()
    for name, pod in _pod_specs():
        for container in pod.get("initContainers", []) + pod["containers"]:
            kind = image_kind(container["image"])
            assert kind is not None, f"{name}: unexpected image {container['image']}"
            seen.add(kind)
            assert container["image"].endswith(f":{version}")
            env = _container_env(container)
            unknown = set(env) - env_names(kind)
            assert not unknown, f"{name}/{container['name']}: variables no loader reads: {unknown}"
            load_service_config(kind, env)
            argv = [*container.get("command", []), *container.get("args", [])]
            for invocation in script_invocations(argv):
                check_invocation(invocation)
    assert seen == set(KINDS)


def test_k8s_probes_ports_and_resources(routes: dict[str, set[str]]) -> None:
    for name, pod in _pod_specs():
        for container in pod["containers"]:
            kind = image_kind(container["image"])
            assert kind is not None
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert set(ports.values()) == {default_port(kind)}
            for probe in ("livenessProbe", "readinessProbe"):
                get = container[probe]["httpGet"]
                assert get["path"] in routes[kind], f"{name}: {probe} on a path {kind} does not serve"
                assert ports.get(get["port"], get["port"]) == default_port(kind)
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]
            assert pod["securityContext"]["runAsNonRoot"] is True


def test_k8s_edge_is_one_replica_on_its_volume() -> None:
    deployments = [d for d in _objects("Deployment")
                   if image_kind(d["spec"]["template"]["spec"]["containers"][0]["image"]) == "edge"]
    assert deployments
    for deployment in deployments:
        spec = deployment["spec"]
        assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate", "one SQLite writer"
        container = spec["template"]["spec"]["containers"][0]
        env = _container_env(container)
        config = load_service_config("edge", env)
        args = container["args"]
        data_dir = args[args.index("--data-dir") + 1]
        assert str(config.storage.data_dir) == data_dir
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
        data_volumes = [n for n, path in mounts.items() if path == data_dir]
        assert len(data_volumes) == 1 and "persistentVolumeClaim" in volumes[data_volumes[0]]
        claim = _by_name("PersistentVolumeClaim")[volumes[data_volumes[0]]["persistentVolumeClaim"]["claimName"]]
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert config.sync.username == config.node.node_id, "the ACL patterns use %u = the node id"


def test_k8s_central_keeps_one_stable_mqtt_session() -> None:
    deployments = [d for d in _objects("Deployment")
                   if image_kind(d["spec"]["template"]["spec"]["containers"][0]["image"]) == "central"]
    assert len(deployments) == 1
    spec = deployments[0]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    env = _container_env(spec["template"]["spec"]["containers"][0])
    assert env.get("CENTRAL_MQTT__CLIENT_ID"), "pod names change on every rollout: fix the client id"
    init = [c["command"] for c in spec["template"]["spec"].get("initContainers", [])]
    assert init == [["central-sync", "migrate"]]
