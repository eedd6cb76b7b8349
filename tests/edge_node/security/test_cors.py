"""CORS: exact allow-list, preflights answered before auth, the origin echoed (never `*`) on every response."""

from __future__ import annotations

import pytest

from edge_node.config import ConfigError, load_config
from tests.edge_node.security.helpers import SecureClient, bearer

POS = "https://pos.example.com"
JOBS = "/api/v1/ocr/jobs"


def _preflight(origin: str, method: str = "POST", headers: str = "authorization, content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


async def test_preflight_of_an_allowed_origin(secure_client: SecureClient) -> None:
    client = await secure_client(server={"cors_origins": [POS, "http://tablet.local:8080"]})
    response = await client.options("/api/v1/ocr/process", headers=_preflight(POS))  # no token: preflights carry none
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == POS
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "DELETE"}
    assert {"Authorization", "Content-Type", "Idempotency-Key"} <= set(
        response.headers["Access-Control-Allow-Headers"].split(", "))
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    delete = await client.options(f"{JOBS}/x", headers=_preflight("http://tablet.local:8080", "DELETE", ""))
    assert delete.status == 204


@pytest.mark.parametrize(
    "headers",
    [
        _preflight("https://evil.example.com"),
        _preflight("https://pos.example.com.evil.net"),  # exact match, not a prefix
        _preflight("http://pos.example.com"),  # another scheme is another origin
        _preflight("null"),
        _preflight(POS, method="PUT"),
        _preflight(POS, headers="authorization, x-forwarded-for"),
    ],
)
async def test_preflights_outside_the_list_are_refused(secure_client: SecureClient, headers: dict[str, str]) -> None:
    client = await secure_client(server={"cors_origins": [POS]})
    response = await client.options("/api/v1/ocr/process", headers=headers)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "FORBIDDEN"
    if headers["Origin"] != POS:
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_responses_echo_the_allowed_origin_errors_included(secure_client: SecureClient) -> None:
    client = await secure_client(server={"cors_origins": [POS]})
    response = await client.get(JOBS, headers={**bearer(), "Origin": POS})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == POS
    assert "X-RateLimit-Remaining" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]
    unauthorized = await client.get(JOBS, headers={"Origin": POS})
    assert unauthorized.status == 401 and unauthorized.headers["Access-Control-Allow-Origin"] == POS
    foreign = await client.get(JOBS, headers={**bearer(), "Origin": "https://evil.example.com"})
    assert foreign.status == 200  # the browser, not the node, withholds the body from the foreign page
    assert "Access-Control-Allow-Origin" not in foreign.headers
    assert all(value != "*" for value in response.headers.values())


async def test_without_origins_nothing_is_allowed(secure_client: SecureClient) -> None:
    client = await secure_client()
    assert (await client.options("/api/v1/ocr/process", headers=_preflight(POS))).status == 403
    response = await client.get(JOBS, headers={**bearer(), "Origin": POS})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("origin", ["*", "https://*.example.com", "https://pos.example.com/", "pos.example.com",
                                    "https://pos.example.com/app", "ftp://pos.example.com"])
def test_config_refuses_anything_but_exact_origins(origin: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"EDGE_SERVER__CORS_ORIGINS": f"['{origin}']"})
    assert "server.cors_origins" in "\n".join(caught.value.problems)


def test_config_normalizes_case() -> None:
    config = load_config(environ={"EDGE_SERVER__CORS_ORIGINS": "[HTTPS://POS.Example.com:8443]"})
    assert config.server.cors_origins == ["https://pos.example.com:8443"]
