"""The dashboard's read queries against PostgreSQL (SQLAlchemy Core). Each takes a `Scope` (shops, time range).

A job's time is when the node created it (falling back to when central received it). Accuracy comes from the
`correction.*` points nodes send after a clerk corrects a job (edge_node/store/corrections.py): for each job only
its latest correction counts, and a field counts as right when the clerk kept the node's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from central_sync.db.models import jobs, model_metrics, nodes

FIELD_METRIC_PREFIX = "correction.field."
FAILED_STATUSES = ("failed", "dead")
#: Above this range the time series is bucketed by day instead of by hour (a week is 168 points per shop).
HOURLY_MAX = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Scope:
    """What a query covers: `shops` None means every shop."""

    shops: list[str] | None
    start: datetime
    end: datetime

    @property
    def bucket(self) -> str:
        """hour or day: the time series' step for this range."""
        return "hour" if self.end - self.start <= HOURLY_MAX else "day"


def _job_time() -> Any:
    return func.coalesce(jobs.c.created_at, jobs.c.received_at)


def _jobs_where(scope: Scope) -> list[Any]:
    clauses = [_job_time() >= scope.start, _job_time() < scope.end]
    if scope.shops is not None:
        clauses.append(jobs.c.shop_id.in_(scope.shops))
    return clauses


def _rate(ok: int, total: int) -> float | None:
    return round(ok / total, 4) if total else None


def _ms(value: float | None) -> float | None:
    return round(float(value), 1) if value is not None else None


def _job_stats(*group: Any) -> Select[Any]:
    """Counts and processing-time percentiles, grouped by `group` columns."""
    completed = jobs.c.status == "completed"
    return select(
        *group,
        func.count().label("jobs"),
        func.count().filter(completed).label("completed"),
        func.count().filter(jobs.c.status.in_(FAILED_STATUSES)).label("failed"),
        func.percentile_cont(0.5).within_group(jobs.c.processing_time_ms).filter(completed).label("p50"),
        func.percentile_cont(0.95).within_group(jobs.c.processing_time_ms).filter(completed).label("p95"),
    )


def _stats_dict(row: Any) -> dict[str, Any]:
    finished = row.completed + row.failed
    return {
        "jobs": row.jobs,
        "completed": row.completed,
        "failed": row.failed,
        "success_rate": _rate(row.completed, finished),
        "p50_ms": _ms(row.p50),
        "p95_ms": _ms(row.p95),
    }


async def summary(conn: AsyncConnection, scope: Scope) -> dict[str, Any]:
    """Totals over the scope: jobs, success rate, p50/p95, and nodes online/offline."""
    row = (await conn.execute(_job_stats().where(*_jobs_where(scope)))).one()
    node_query = select(nodes.c.status, func.count().label("n")).group_by(nodes.c.status)
    if scope.shops is not None:
        node_query = node_query.where(nodes.c.shop_id.in_(scope.shops))
    by_status = {r.status: r.n for r in await conn.execute(node_query)}
    return {
        **_stats_dict(row),
        "nodes_online": by_status.get("online", 0),
        "nodes_offline": sum(n for status, n in by_status.items() if status != "online"),
    }


async def shops(conn: AsyncConnection, scope: Scope) -> list[dict[str, Any]]:
    """Per shop: node counts and job statistics (every shop with a node or a job in range)."""
    stats = {r.shop_id: _stats_dict(r) for r in await conn.execute(
        _job_stats(jobs.c.shop_id).where(*_jobs_where(scope)).group_by(jobs.c.shop_id)
    )}
    node_query = select(
        nodes.c.shop_id, func.count().label("nodes"), func.count().filter(nodes.c.status == "online").label("online")
    ).group_by(nodes.c.shop_id)
    if scope.shops is not None:
        node_query = node_query.where(nodes.c.shop_id.in_(scope.shops))
    node_counts = {r.shop_id: (r.nodes, r.online) for r in await conn.execute(node_query)}
    empty = {"jobs": 0, "completed": 0, "failed": 0, "success_rate": None, "p50_ms": None, "p95_ms": None}
    return [
        {"shop_id": shop, "nodes": node_counts.get(shop, (0, 0))[0], "nodes_online": node_counts.get(shop, (0, 0))[1],
         **stats.get(shop, empty)}
        for shop in sorted(set(stats) | set(node_counts))
    ]


async def node_list(conn: AsyncConnection, scope: Scope) -> list[dict[str, Any]]:
    """Every node of the scope's shops with its status, last seen, model, backlog and job counts in range."""
    counts = (
        select(
            jobs.c.node_id,
            func.count().label("jobs"),
            func.count().filter(jobs.c.status == "completed").label("completed"),
            func.count().filter(jobs.c.status.in_(FAILED_STATUSES)).label("failed"),
        )
        .where(*_jobs_where(scope))
        .group_by(jobs.c.node_id)
        .subquery()
    )
    query = (
        select(nodes, counts.c.jobs, counts.c.completed, counts.c.failed)
        .outerjoin(counts, counts.c.node_id == nodes.c.node_id)
        .order_by(nodes.c.shop_id, nodes.c.node_id)
    )
    if scope.shops is not None:
        query = query.where(nodes.c.shop_id.in_(scope.shops))
    return [
        {
            "node_id": r.node_id,
            "shop_id": r.shop_id,
            "status": r.status,
            "status_at": _iso(r.status_at),
            "last_seen": _iso(r.last_seen),
            "model_version": r.model_version,
            "version": r.version,
            "backlog": r.backlog,
            "acked_seq": r.acked_seq,
            "jobs": r.jobs or 0,
            "completed": r.completed or 0,
            "failed": r.failed or 0,
        }
        for r in await conn.execute(query)
    ]


async def job_series(conn: AsyncConnection, scope: Scope) -> list[dict[str, Any]]:
    """Jobs per hour (or per day over long ranges) per shop; buckets without jobs are left out."""
    # Literals, not parameters: GROUP BY must repeat the very same expression (scope.bucket is hour or day).
    bucket = func.date_trunc(literal_column(f"'{scope.bucket}'"), _job_time(), literal_column("'UTC'")).label("bucket")
    query = (
        select(
            bucket,
            jobs.c.shop_id,
            func.count().label("jobs"),
            func.count().filter(jobs.c.status == "completed").label("completed"),
            func.count().filter(jobs.c.status.in_(FAILED_STATUSES)).label("failed"),
        )
        .where(*_jobs_where(scope))
        .group_by(bucket, jobs.c.shop_id)
        .order_by(bucket, jobs.c.shop_id)
    )
    return [
        {"at": _iso(r.bucket), "shop_id": r.shop_id, "jobs": r.jobs, "completed": r.completed, "failed": r.failed}
        for r in await conn.execute(query)
    ]


async def errors(conn: AsyncConnection, scope: Scope) -> list[dict[str, Any]]:
    """Failed jobs by error code (and shop), most frequent first."""
    query = (
        select(jobs.c.error_code, jobs.c.shop_id, func.count().label("n"))
        .where(*_jobs_where(scope), jobs.c.status.in_(FAILED_STATUSES))
        .group_by(jobs.c.error_code, jobs.c.shop_id)
        .order_by(func.count().desc(), jobs.c.error_code, jobs.c.shop_id)
    )
    return [{"code": r.error_code or "UNKNOWN", "shop_id": r.shop_id, "count": r.n} for r in await conn.execute(query)]


async def accuracy(conn: AsyncConnection, scope: Scope) -> dict[str, Any]:
    """Accuracy from corrections: overall (right fields / compared fields), by field, and per shop."""
    m = model_metrics
    where = [
        m.c.metric_name.startswith("correction.", autoescape=True),
        m.c.job_id.is_not(None),
        m.c.recorded_at >= scope.start,
        m.c.recorded_at < scope.end,
    ]
    if scope.shops is not None:
        where.append(m.c.shop_id.in_(scope.shops))
    points = select(m.c.node_id, m.c.job_id, m.c.shop_id, m.c.metric_name, m.c.value, m.c.recorded_at).where(
        *where
    ).cte("points")
    latest = (
        select(points.c.node_id, points.c.job_id, func.max(points.c.recorded_at).label("at"))
        .group_by(points.c.node_id, points.c.job_id)
        .cte("latest")
    )
    current = select(points.c.shop_id, points.c.metric_name, points.c.value, points.c.node_id, points.c.job_id).join(
        latest,
        and_(latest.c.node_id == points.c.node_id, latest.c.job_id == points.c.job_id,
             latest.c.at == points.c.recorded_at),
    ).subquery()
    is_field = current.c.metric_name.startswith(FIELD_METRIC_PREFIX, autoescape=True)
    query = select(
        current.c.shop_id,
        current.c.metric_name,
        func.sum(current.c.value).label("right"),
        func.count().label("n"),
    ).where(is_field).group_by(current.c.shop_id, current.c.metric_name)
    by_field: dict[str, list[float]] = {}
    by_shop: dict[str, list[float]] = {}
    for r in await conn.execute(query):
        name = r.metric_name.removeprefix(FIELD_METRIC_PREFIX)
        for bucket in (by_field.setdefault(name, [0.0, 0]), by_shop.setdefault(r.shop_id, [0.0, 0])):
            bucket[0] += float(r.right)
            bucket[1] += r.n
    corrections = await conn.scalar(
        select(func.count()).select_from(
            select(current.c.node_id, current.c.job_id).distinct().subquery()
        )
    )
    right = sum(v[0] for v in by_field.values())
    total = sum(v[1] for v in by_field.values())
    return {
        "overall": round(right / total, 4) if total else None,
        "by_field": {name: _share(v) for name, v in sorted(by_field.items())},
        "by_shop": {shop: _share(v) for shop, v in sorted(by_shop.items())},
        "corrections": int(corrections or 0),
    }


def _share(counts: list[float]) -> dict[str, Any]:
    return {"accuracy": round(counts[0] / counts[1], 4), "checked": int(counts[1])}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

