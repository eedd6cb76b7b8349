"""What the node says about its models: the status's `model_versions`, /health's serving map, shadow metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_node.engines.trocr_onnx import KEY as TROCR_KEY
from edge_node.models.installed import InstalledModel
from edge_node.models.shadow import ShadowStats
from shared_models.model_updates import SHADOW_AGREEMENT_METRIC, SHADOW_LINES_METRIC

#: Routing keys of shadow wrappers end with this (see shadow.shadow_routing); reports name the engine behind it.
SHADOW_SUFFIX = "+shadow"


def model_versions(primary: Mapping[str, str], serving: InstalledModel | None,
                   shadow: InstalledModel | None) -> dict[str, str]:
    """Each language's engine, and `trocr` / `trocr-shadow` -> NAME@VERSION of the bundles from rollouts (the
    form central counts, see shared_models.model_updates)."""
    versions = {language: key.removesuffix(SHADOW_SUFFIX) for language, key in primary.items()}
    if serving is not None:
        versions[TROCR_KEY] = serving.label
    if shadow is not None:
        versions[f"{TROCR_KEY}-shadow"] = shadow.label
    return versions


def serving_by_language(primary: Mapping[str, str], serving: InstalledModel | None,
                        shadow: InstalledModel | None) -> dict[str, str]:
    """Language -> engine serving it (`trocr:NAME@VERSION` for a rolled-out bundle), plus the shadow."""
    result = {}
    for language, key in primary.items():
        base = key.removesuffix(SHADOW_SUFFIX)
        result[language] = f"{base}:{serving.label}" if base == TROCR_KEY and serving is not None else base
    if shadow is not None:
        result["shadow"] = f"{TROCR_KEY}:{shadow.label}"
    return result


def shadow_metrics(label: str, stats: ShadowStats, at: str) -> dict[str, Any]:
    """The metrics body of a shadow report: cumulative agreement and lines compared, one timestamp."""
    return {"timestamp": at, "metrics": [
        {"model_name": label, "metric_name": SHADOW_AGREEMENT_METRIC, "value": round(stats.agreement or 0.0, 4),
         "recorded_at": at},
        {"model_name": label, "metric_name": SHADOW_LINES_METRIC, "value": stats.lines, "recorded_at": at},
    ]}
