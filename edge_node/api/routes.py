"""The route table of the node's HTTP API."""

from __future__ import annotations

from aiohttp import web

from edge_node import keys
from edge_node.api import audit, corrections, health, jobs, metrics, openapi
from edge_node.api.middlewares import admin_only
from edge_node.api.ocr import OcrHandlers
from edge_node.web import setup_web

API_PREFIX = "/api/v1"


def setup_routes(app: web.Application) -> None:
    """Register every endpoint; the OpenAPI test compares this table with the document."""
    ocr = OcrHandlers()
    app.router.add_post(f"{API_PREFIX}/ocr/process", ocr.process)
    app.router.add_post(f"{API_PREFIX}/ocr/process/async", ocr.process_async)
    app.router.add_post(f"{API_PREFIX}/ocr/batch", ocr.batch)
    app.router.add_get(f"{API_PREFIX}/ocr/jobs", jobs.list_jobs)
    app.router.add_get(f"{API_PREFIX}/ocr/jobs/{{job_id}}", jobs.get_job)
    app.router.add_post(f"{API_PREFIX}/ocr/jobs/{{job_id}}/retry", jobs.retry_job)
    app.router.add_delete(f"{API_PREFIX}/ocr/jobs/{{job_id}}", jobs.delete_job)
    app.router.add_get(f"{API_PREFIX}/ocr/jobs/{{job_id}}/image", jobs.get_job_image)
    app.router.add_get(f"{API_PREFIX}/audit/images", audit.list_image_audit)
    app.router.add_post(f"{API_PREFIX}/ocr/jobs/{{job_id}}/corrections", corrections.save_correction)
    app.router.add_get(f"{API_PREFIX}/ocr/corrections/export", corrections.export_corrections)
    app.router.add_get(f"{API_PREFIX}/ocr/ws", app[keys.EVENTS].handle)
    app.router.add_get(f"{API_PREFIX}/health", health.health)
    app.router.add_get(f"{API_PREFIX}/metrics", admin_only(metrics.metrics))
    app.router.add_get(f"{API_PREFIX}/metrics/prometheus", admin_only(metrics.metrics_prometheus))
    app.router.add_get(f"{API_PREFIX}/openapi.json", openapi.openapi)
    setup_web(app)  # the scan page at / and its files under /static/
