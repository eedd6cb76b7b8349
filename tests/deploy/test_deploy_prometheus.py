"""deploy/prometheus: the alerting rules use metrics the services really expose, and the scrape config points
at real routes and ports.

Metric names are taken both from the source (grep of edge_node/ and central_sync/) and from a live scrape of a
real edge app's /api/v1/metrics/prometheus; label matchers are checked against the live samples.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.deploy.deploy_support import PROMETHEUS_DIR, ROOT, RunningEdge, central_routes, default_port, edge_routes

ALERTS = PROMETHEUS_DIR / "alerts.yml"
PROMETHEUS = PROMETHEUS_DIR / "prometheus.yml"
#: Series that Prometheus itself (`up`) or the blackbox exporter (`probe_success`) produce, not our code.
EXTERNAL_METRICS = {"up": "zakpos-edge", "probe_success": "zakpos-central"}
#: Metrics a rule may name before the code emits them, with the work that adds them. Empty once it has landed.
PENDING_METRICS = {"zakpos_ocr_accuracy": "clerks' corrections (edge_node/api/corrections.py) add this gauge"}
#: The seed's alert thresholds: metric -> (comparison, threshold).
SEED_THRESHOLDS = {
    "zakpos_ocr_requests_total": (">", 0.05),
    "zakpos_ocr_processing_time_ms_avg": (">", 59.0),
    "zakpos_ocr_accuracy": ("<", 0.90),
}
PROMQL_KEYWORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
                             "bool", "offset", "inf", "nan"})
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)"\s*,?')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def selectors(expr: str) -> list[tuple[str, dict[str, str]]]:
    """(metric name, {label: value}) of every series selector in a PromQL expression (equality matchers)."""
    found: list[tuple[str, dict[str, str]]] = []

    def braces(match: re.Match[str]) -> str:
        labels = {m.group(1): m.group(3) for m in _MATCHER.finditer(match.group(2)) if m.group(2) == "="}
        assert _MATCHER.sub("", match.group(2)).strip() == "", f"unparsed label matchers in {match.group(0)!r}"
        name = match.group(1) or labels.pop("__name__", "")
        found.append((name, labels))
        return " "

    rest = _SELECTOR.sub(braces, expr)
    rest = re.sub(r"\[[^\]]*\]", " ", rest)
    rest = _GROUPING.sub(" ", rest)
    for match in re.finditer(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", rest):
        name = match.group(0)
        if name in PROMQL_KEYWORDS or re.match(r"\s*\(", rest[match.end():]):
            continue  # an operator, or a function / aggregation
        found.append((name, {}))
    return found


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _source_metric_names() -> set[str]:
    names: set[str] = set()
    for package in ("edge_node", "central_sync"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"\bzakpos_[a-z0-9_]+\b", path.read_text(encoding="utf-8")))
    return names


def _exposition(edge: RunningEdge) -> tuple[set[str], dict[str, list[dict[str, str]]]]:
    """(metric names with a # TYPE line, samples' label sets by metric) of the live endpoint."""
    request = urllib.request.Request(f"{edge.base_url}/api/v1/metrics/prometheus",
                                     headers={"Authorization": f"Bearer {edge.token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    typed = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    samples: dict[str, list[dict[str, str]]] = {}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? \S+$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            samples.setdefault(match.group(1), []).append(labels)
    return typed, samples


def test_selector_parser() -> None:
    expr = 'sum by (job) (increase(a_total{outcome="x", code="y"}[5m])) / on(job) b > 0.05 and up{job="j"} == 0'
    assert selectors(expr) == [("a_total", {"outcome": "x", "code": "y"}), ("up", {"job": "j"}), ("b", {})]


def test_rules_are_well_formed() -> None:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert document["groups"]
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names))
    for rule in _rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert DURATION.match(rule["for"]), rule["for"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_the_seed_thresholds_are_alerted() -> None:
    for metric, (comparison, threshold) in SEED_THRESHOLDS.items():
        matching = [r["expr"] for r in _rules() if metric in {name for name, _ in selectors(r["expr"])}]
        assert matching, f"no rule on {metric}"
        pattern = rf"{re.escape(comparison)}\s*([0-9.]+)\s*$"
        values = [float(m.group(1)) for e in matching if (m := re.search(pattern, e.strip()))]
        assert threshold in values, f"{metric}: expected a rule `{comparison} {threshold}`, got {matching}"


def test_rules_use_metrics_the_code_emits(running_edge: RunningEdge) -> None:
    in_source = _source_metric_names()
    typed, samples = _exposition(running_edge)
    jobs = {job["job_name"] for job in yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))["scrape_configs"]}
    for rule in _rules():
        for name, labels in selectors(rule["expr"]):
            if name in EXTERNAL_METRICS:
                assert labels.get("job") in jobs, f"{rule['alert']}: {name} of a job prometheus.yml does not scrape"
                continue
            if name in PENDING_METRICS and name not in in_source:
                continue
            assert name in in_source, f"{rule['alert']}: no code emits {name}"
            if name.startswith("zakpos_ocr_"):  # the edge node's metrics: the live endpoint must expose them
                assert name in typed, f"{rule['alert']}: {name} is not at /api/v1/metrics/prometheus"
            for label, value in labels.items():
                seen = samples.get(name, [])
                if seen:
                    values = {s.get(label) for s in seen}
                    assert value in values, f"{rule['alert']}: {name}{{{label}={value!r}}} never appears ({values})"


def test_scrape_config_points_at_real_routes(tmp_path: Path) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS.parent / rule_file).exists()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(EXTERNAL_METRICS.values())
    edge = jobs["zakpos-edge"]
    assert edge["metrics_path"] in edge_routes(tmp_path / "data")
    assert edge["authorization"]["type"] == "Bearer" and edge["authorization"]["credentials_file"]
    for group in edge["static_configs"]:
        for target in group["targets"]:
            assert int(target.rsplit(":", 1)[1]) == default_port("edge")
    central = jobs["zakpos-central"]
    assert central["metrics_path"] == "/probe" and central["params"]["module"] == ["http_2xx"]
    for group in central["static_configs"]:
        for target in group["targets"]:
            parts = urlsplit(target)
            assert parts.port == default_port("central") and parts.path in central_routes()

