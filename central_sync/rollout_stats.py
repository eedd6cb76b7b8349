"""What nodes report about rolled-out models: how many run a version, and a shadow model's agreement.

- Nodes running NAME@VERSION: a node's retained/enveloped status carries `model_versions` ({engine or slot:
  version}); a node counts for a label when one of the values is "NAME@VERSION" (or the key is NAME and the value
  VERSION), or when `nodes.model_version` is the label.
- Shadow agreement: nodes send `ocr_model_metrics` points with model_name "NAME@VERSION" and metric_name
  SHADOW_AGREEMENT_METRIC (0-1), beside SHADOW_LINES_METRIC (lines compared) at the same recorded_at. Each node's
  latest agreement counts once; the mean over nodes is weighted by their lines when every node reported them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection

from central_sync.db.models import model_metrics, nodes
from shared_models.model_updates import SHADOW_AGREEMENT_METRIC, SHADOW_LINES_METRIC


@dataclass(frozen=True)
class ShadowAgreement:
    """A shadow model's agreement with the serving model, over the nodes that reported it."""

    value: float | None
    nodes: int
    lines: int | None
    weighted: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"value": self.value, "nodes": self.nodes, "lines": self.lines, "weighted": self.weighted}


NO_REPORTS = ShadowAgreement(value=None, nodes=0, lines=None, weighted=False)


def _latest(metric: str, labels: Collection[str], shops: Collection[str] | None) -> Any:
    m = model_metrics
    query = (
        select(m.c.model_name, m.c.node_id, m.c.value, m.c.recorded_at)
        .where(m.c.metric_name == metric, m.c.model_name.in_(list(labels)))
        .ext(distinct_on(m.c.model_name, m.c.node_id))
        .order_by(m.c.model_name, m.c.node_id, m.c.recorded_at.desc(), m.c.id.desc())
    )
    if shops is not None:
        query = query.where(m.c.shop_id.in_(list(shops)))
    return query


def combine(points: list[tuple[float, float | None]]) -> ShadowAgreement:
    """Agreement over nodes from each node's (agreement, lines or None)."""
    if not points:
        return NO_REPORTS
    weights = [lines for _value, lines in points]
    if all(w is not None and w > 0 for w in weights):
        total = sum(w for w in weights if w is not None)
        value = sum(v * (w or 0) for v, w in points) / total
        return ShadowAgreement(value=round(value, 4), nodes=len(points), lines=int(total), weighted=True)
    value = sum(v for v, _w in points) / len(points)
    return ShadowAgreement(value=round(value, 4), nodes=len(points), lines=None, weighted=False)


async def shadow_agreement(
    conn: AsyncConnection, labels: Collection[str], shops: Collection[str] | None = None
) -> dict[str, ShadowAgreement]:
    """label -> agreement (NO_REPORTS when no node reported one), over `shops` (None: all)."""
    if not labels:
        return {}
    agreement = await conn.execute(_latest(SHADOW_AGREEMENT_METRIC, labels, shops))
    lines = {
        (row.model_name, row.node_id, row.recorded_at): row.value
        for row in await conn.execute(_latest(SHADOW_LINES_METRIC, labels, shops))
    }
    points: dict[str, list[tuple[float, float | None]]] = {}
    for row in agreement:
        points.setdefault(row.model_name, []).append(
            (float(row.value), lines.get((row.model_name, row.node_id, row.recorded_at)))
        )
    return {label: combine(points.get(label, [])) for label in labels}


def reports(label: str, model_version: str | None, model_versions: Mapping[str, Any] | None) -> bool:
    """Whether a node's reported versions include NAME@VERSION."""
    if model_version == label:
        return True
    name, _, version = label.partition("@")
    return any(
        value == label or (key == name and value == version) for key, value in (model_versions or {}).items()
    )


async def nodes_reporting(
    conn: AsyncConnection, labels: Collection[str], shops: Collection[str] | None = None
) -> dict[str, int]:
    """label -> how many nodes (of `shops`; None: all) report running it."""
    if not labels:
        return {}
    query = select(nodes.c.model_version, nodes.c.model_versions).where(
        or_(nodes.c.model_version.is_not(None), nodes.c.model_versions.is_not(None))
    )
    if shops is not None:
        query = query.where(nodes.c.shop_id.in_(list(shops)))
    counts = dict.fromkeys(labels, 0)
    for row in await conn.execute(query):
        for label in labels:
            counts[label] += reports(label, row.model_version, row.model_versions)
    return counts
