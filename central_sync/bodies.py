"""What central reads from an envelope's `body`, per kind. Lenient on extras (the node may add fields), strict on
the fields central stores, so a wrong type is a reject rather than a database error.

- results / errors: the node's job event (edge_node.store.jobs._event): job_id, shop_id, user_id, document_type,
  status, attempts, created_at, completed_at, timestamp, result (an OcrResult as JSON) or error{code, message}.
  An errors body with `log_kind: "node_error"` is instead a node-level failure with no job
  (shared_models.model_updates.NodeErrorLog, e.g. a model update that failed).
- metrics: `{"metrics": [{"model_name", "metric_name", "value", "job_id"?, "recorded_at"?}, ...]}`, or a
  snapshot (the node's `{"timestamp", "summary": <its /metrics document>}`, or that document itself: numbers at
  the top level, `by_model: {model: {name: number}}`, other `{name: number}` maps), flattened into points.
- status: a NodeStatus-like document (state, version, model_versions, backlog, at).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: A metrics message with more points than this is refused (a snapshot has tens; this bounds one transaction).
MAX_METRIC_POINTS = 2000
#: Model name used for node-wide metrics of a snapshot document.
NODE_WIDE = "node"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorInfo(_Lenient):
    """The error of a failed job."""

    code: str = Field(min_length=1, max_length=64)
    message: str | None = None


class JobEvent(_Lenient):
    """The body of a results or errors envelope."""

    job_id: str = Field(min_length=1, max_length=128)
    shop_id: str | None = Field(None, max_length=128)
    user_id: str | None = Field(None, max_length=256)
    document_type: str | None = Field(None, max_length=32)
    status: str = Field(min_length=1, max_length=32)
    attempts: int = Field(0, ge=0)
    created_at: datetime | None = None
    completed_at: datetime | None = None
    timestamp: datetime | None = None
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None


class ResultFields(_Lenient):
    """The OcrResult fields that get their own columns; the whole result is kept as JSONB too."""

    text: str | None = None
    confidence: float | None = None
    structured: dict[str, Any] | None = None
    barcodes: list[Any] | None = None
    model_used: str | None = None
    processing_time_ms: float | None = None


class MetricPoint(_Lenient):
    """One metric value."""

    model_name: str = Field(min_length=1, max_length=128)
    metric_name: str = Field(min_length=1, max_length=256)
    value: float
    job_id: str | None = Field(None, max_length=128)
    recorded_at: datetime | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class MetricsBody(_Lenient):
    """The body of a metrics envelope."""

    metrics: list[MetricPoint] = Field(max_length=MAX_METRIC_POINTS)
    timestamp: datetime | None = None


class StatusBody(_Lenient):
    """The body of a status envelope."""

    state: str = Field("online", pattern="^(online|offline)$")
    version: str | None = Field(None, max_length=64)
    model_version: str | None = Field(None, max_length=256)
    model_versions: dict[str, str] = Field(default_factory=dict)
    backlog: int | None = Field(None, ge=0)
    at: datetime | None = None

    def model_summary(self) -> str | None:
        """One string for nodes.model_version: the explicit one, or `engine=version` pairs."""
        if self.model_version:
            return self.model_version
        return ",".join(f"{k}={v}" for k, v in sorted(self.model_versions.items())) or None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def metric_points(body: dict[str, Any]) -> dict[str, Any]:
    """A metrics body in the `{"metrics": [...]}` form: explicit lists pass through, snapshots are flattened."""
    if "metrics" in body:
        return body
    summary = body.get("summary")
    source = summary if isinstance(summary, dict) else body
    points: list[dict[str, Any]] = []
    for key, value in source.items():
        if _is_number(value):
            points.append({"model_name": NODE_WIDE, "metric_name": key, "value": value})
        elif isinstance(value, dict) and key == "by_model":
            for model, stats in value.items():
                if isinstance(stats, dict):
                    points.extend(
                        {"model_name": str(model), "metric_name": name, "value": number}
                        for name, number in stats.items()
                        if _is_number(number)
                    )
        elif isinstance(value, dict):
            points.extend(
                {"model_name": NODE_WIDE, "metric_name": f"{key}.{name}", "value": number}
                for name, number in value.items()
                if _is_number(number)
            )
    return {"metrics": points, "timestamp": body.get("timestamp")}
