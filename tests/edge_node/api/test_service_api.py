"""Health, metrics (JSON and Prometheus) and the OpenAPI document kept true to the route table."""

from __future__ import annotations

from conftest import ClientFactory, admin_auth, auth, form
from support import encode, render_lines

from edge_node.api.openapi import RESULT_SCHEMA


async def test_health_needs_no_token(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/api/v1/health")
    data = (await response.json())["data"]
    assert response.status == 200
    assert data["status"] == "healthy"
    assert set(data["queue_status"]) >= {"pending_jobs", "processing_jobs", "failed_jobs"}
    assert "ppocr" in data["models_loaded"] and "tesseract" in data["models_loaded"]
    assert data["version"] and data["uptime_seconds"] >= 0


async def test_metrics_json_and_prometheus(make_client: ClientFactory) -> None:
    client = await make_client()
    await client.post("/api/v1/ocr/process", data=form(encode(render_lines(["A 1"]))), headers=auth())
    await client.post("/api/v1/ocr/process", data=form(b"junk"), headers=auth())
    data = (await (await client.get("/api/v1/metrics", headers=admin_auth())).json())["data"]
    assert data["total_requests"] == 2 and data["successful_requests"] == 1
    assert data["errors_by_type"] == {"INVALID_IMAGE": 1}
    assert data["average_processing_time_ms"] > 0
    assert set(data["model_accuracy"]) == {"overall", "by_field", "corrections"}
    text = await (await client.get("/api/v1/metrics", headers={**admin_auth(), "Accept": "text/plain"})).text()
    assert 'zakpos_ocr_requests_total{outcome="success"} 1' in text
    assert text == await (await client.get("/api/v1/metrics/prometheus", headers=admin_auth())).text()


async def test_openapi_matches_the_routes_and_the_responses(make_client: ClientFactory) -> None:
    client = await make_client()
    document = await (await client.get("/api/v1/openapi.json")).json()
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    routed = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method != "HEAD" and path:
            routed.add((path, route.method))
    assert documented == routed
    data = (await (await client.post("/api/v1/ocr/process", data=form(encode(render_lines(["X 2"]))),
                                     headers=auth())).json())["data"]
    assert set(RESULT_SCHEMA["required"]) <= set(data)
    assert set(data) <= set(RESULT_SCHEMA["properties"]) | {"image"}
