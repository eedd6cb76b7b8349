"""Access: HS256 and EdDSA tokens, `kid` key rotation, roles, and shop isolation (jobs, retries, deletes,
images and WebSocket events of another shop)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edge_node import keys
from edge_node.auth import TokenVerifier, VerificationKey, build_verifier, issue_token
from edge_node.config import AuthConfig, ConfigError, EdgeConfig
from edge_node.errors import ForbiddenError, UnauthorizedError
from edge_node.store.jobs import get_job_any
from tests.edge_node.security.helpers import OTHER_SHOP, SECRET, SHOP, SecureClient, admin, bearer, insert_job, run_db

OLD_SECRET = "the-old-secret-of-last-year-still-valid"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _pem(key: Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return path


def _token(key: str | Ed25519PrivateKey, kid: str | None = None, shop: str = SHOP, role: str = "clerk") -> str:
    return issue_token(key, user_id="u1", shop_id=shop, ttl_seconds=60, role=role, kid=kid)


def test_eddsa_default_key_and_hs256_default_secret_both_work(tmp_path: Path) -> None:
    signer = Ed25519PrivateKey.generate()
    auth = AuthConfig(jwt_public_key_file=_pem(signer, tmp_path / "central.pem"), shop_id=SHOP)
    verifier = build_verifier(auth, SECRET)
    assert verifier.verify(_token(signer)).user_id == "u1"
    assert verifier.verify(_token(SECRET)).user_id == "u1"
    with pytest.raises(UnauthorizedError):
        verifier.verify(_token(Ed25519PrivateKey.generate()))  # another key pair
    with pytest.raises(UnauthorizedError):  # no public key configured: EdDSA tokens are refused
        TokenVerifier(SECRET, SHOP).verify(_token(signer))


def test_kid_selects_the_key_among_rotated_ones(tmp_path: Path) -> None:
    current = Ed25519PrivateKey.generate()
    auth = AuthConfig.model_validate({"shop_id": SHOP, "keys": {
        "2024": {"secret": OLD_SECRET}, "2025": {"public_key_file": str(_pem(current, tmp_path / "k.pem"))}}})
    verifier = build_verifier(auth, SECRET)
    assert verifier.verify(_token(OLD_SECRET, kid="2024")).shop_id == SHOP
    assert verifier.verify(_token(current, kid="2025")).shop_id == SHOP
    assert verifier.verify(_token(SECRET)).shop_id == SHOP  # no kid: the default secret still works
    for bad in (
        _token(OLD_SECRET, kid="2023"),  # unknown kid
        _token(SECRET, kid="2024"),  # right kid, wrong secret
        _token(current, kid="2024"),  # EdDSA token naming an HS256 key
        _token(OLD_SECRET),  # an old secret without its kid is not a default key
    ):
        with pytest.raises(UnauthorizedError):
            verifier.verify(bad)


def test_public_key_cannot_be_used_as_an_hmac_secret(tmp_path: Path) -> None:
    signer = Ed25519PrivateKey.generate()
    pem = _pem(signer, tmp_path / "k.pem")
    verifier = TokenVerifier(None, SHOP, public_key=VerificationKey.eddsa(pem.read_bytes()),
                             keys={"k": VerificationKey.eddsa(pem.read_bytes())})
    claims = {"sub": "u1", "shop_id": SHOP, "exp": 9999999999}

    def forge(header: dict[str, str]) -> str:
        """The classic algorithm confusion: HS256 keyed with the public key's PEM text (PyJWT will not mint it)."""
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(pem.read_bytes(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    for token in (forge({"alg": "HS256", "typ": "JWT"}), forge({"alg": "HS256", "kid": "k"})):
        with pytest.raises(UnauthorizedError):
            verifier.verify(token)


def test_unknown_role_and_other_shop_are_forbidden() -> None:
    verifier = TokenVerifier(SECRET, SHOP)
    with pytest.raises(ForbiddenError):
        verifier.verify(_token(SECRET, role="owner"))
    with pytest.raises(ForbiddenError):
        verifier.verify(_token(SECRET, shop=OTHER_SHOP))


def test_bad_key_files_are_config_errors_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "rsa.pem").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    auth = AuthConfig.model_validate({"jwt_public_key_file": str(tmp_path / "missing.pem"),
                                      "keys": {"x": {"public_key_file": str(tmp_path / "rsa.pem")}}})
    with pytest.raises(ConfigError) as caught:
        build_verifier(auth, SECRET)
    text = "\n".join(caught.value.problems)
    assert "auth.jwt_public_key_file" in text and "auth.keys.x.public_key_file" in text
    with pytest.raises(ValueError, match="exactly one"):
        AuthConfig.model_validate({"keys": {"x": {}}})


async def test_node_accepts_eddsa_tokens_from_its_config(secure_client: SecureClient, tmp_path: Path) -> None:
    signer = Ed25519PrivateKey.generate()
    client = await secure_client(auth={"keys": {"central-1": {"public_key_file": _pem(signer, tmp_path / "c.pem")}}})
    token = _token(signer, kid="central-1")
    assert (await client.get("/api/v1/ocr/jobs", headers={"Authorization": f"Bearer {token}"})).status == 200
    forged = _token(Ed25519PrivateKey.generate(), kid="central-1")
    assert (await client.get("/api/v1/ocr/jobs", headers={"Authorization": f"Bearer {forged}"})).status == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/metrics"),
        ("GET", "/api/v1/metrics/prometheus"),
        ("POST", "/api/v1/ocr/jobs/{job}/retry"),
        ("DELETE", "/api/v1/ocr/jobs/{job}"),
        ("GET", "/api/v1/ocr/jobs/{job}/image"),
    ],
)
async def test_admin_routes_refuse_clerks(secure_client: SecureClient, method: str, path: str) -> None:
    client = await secure_client()
    job = await insert_job(client, SHOP, status="dead")
    url = path.format(job=job)
    response = await client.request(method, url, headers=bearer())
    body = await response.json()
    assert response.status == 403 and body["error"]["code"] == "FORBIDDEN"
    assert (await client.request(method, url, headers=admin())).status in (200, 202, 404)  # 404: no image stored
    clerk_reads = await client.get(f"/api/v1/ocr/jobs/{job}", headers=bearer())
    assert clerk_reads.status in (200, 404)  # 404 once the admin deleted it


async def test_another_shops_job_is_invisible_and_untouchable(secure_client: SecureClient) -> None:
    client = await secure_client()
    theirs = await insert_job(client, OTHER_SHOP, status="dead")
    vault = client.app[keys.VAULT]
    await client.app[keys.DATABASE].run(vault.put, theirs, b"\x89PNG\r\n\x1a\nsecret-pixels")
    mine = await insert_job(client, SHOP, status="completed")
    for method, path in (("GET", ""), ("POST", "/retry"), ("DELETE", ""), ("GET", "/image")):
        response = await client.request(method, f"/api/v1/ocr/jobs/{theirs}{path}", headers=admin())
        assert response.status == 404, (method, path)
        assert (await response.json())["error"]["code"] == "NOT_FOUND"
    listed = (await (await client.get("/api/v1/ocr/jobs", headers=admin())).json())["data"]["jobs"]
    assert [job["job_id"] for job in listed] == [mine]
    # The other shop's own token is refused outright by this node, whatever its role.
    for method, path in (("GET", ""), ("POST", "/retry"), ("DELETE", ""), ("GET", "/image")):
        response = await client.request(method, f"/api/v1/ocr/jobs/{theirs}{path}", headers=admin(OTHER_SHOP))
        assert response.status == 403, (method, path)
    # Nothing changed: still dead, image still there, no audit row (no read happened).
    job = await client.app[keys.DATABASE].run(get_job_any, theirs)
    assert job is not None and job.status.value == "dead"
    assert await run_db(client, "SELECT job_id FROM images WHERE job_id = ?", theirs)
    assert not await run_db(client, "SELECT * FROM image_audit_log")


async def test_another_shops_events_never_reach_a_websocket(secure_client: SecureClient) -> None:
    client = await secure_client()
    theirs = await insert_job(client, OTHER_SHOP)
    mine = await insert_job(client, SHOP)
    token = bearer(role="admin")["Authorization"].removeprefix("Bearer ")
    ws = await client.ws_connect(f"/api/v1/ocr/ws?token={token}")
    assert (await ws.receive_json())["event"] == "connected"
    await ws.send_json({"action": "subscribe", "job_id": theirs})  # asking for it by id does not help
    assert (await ws.receive_json())["event"] == "subscribed"
    await ws.send_json({"action": "subscribe_all"})
    assert (await ws.receive_json())["event"] == "subscribed"
    db, hub = client.app[keys.DATABASE], client.app[keys.EVENTS]
    for job_id in (theirs, mine):
        job = await db.run(get_job_any, job_id)
        assert job is not None
        hub.publish("job_completed", job, {"result": job.result})
    event = await ws.receive_json(timeout=5)
    assert event["job_id"] == mine  # the other shop's event, published first, was never queued for us
    await ws.close()
    other = await client.get(f"/api/v1/ocr/ws?token={bearer(OTHER_SHOP)['Authorization'][7:]}", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert other.status == 403


def test_config_takes_keys_from_yaml_shape() -> None:
    config = EdgeConfig.model_validate({"auth": {"keys": {"a": {"secret": OLD_SECRET}}}})
    assert config.auth.keys["a"].secret == OLD_SECRET
