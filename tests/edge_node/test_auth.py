"""JWT verification: valid, expired, forged, malformed, another shop."""

from __future__ import annotations

import time

import jwt
import pytest

from edge_node.auth import TokenVerifier, issue_token, load_or_create_secret
from edge_node.errors import ForbiddenError, UnauthorizedError

SECRET = "s" * 40


def test_valid_token_gives_the_principal() -> None:
    token = issue_token(SECRET, user_id="u1", shop_id="shop-a", ttl_seconds=60, role="admin")
    principal = TokenVerifier(SECRET, "shop-a").verify(token)
    assert (principal.user_id, principal.shop_id, principal.role) == ("u1", "shop-a", "admin")


def test_another_shops_token_is_forbidden() -> None:
    token = issue_token(SECRET, user_id="u1", shop_id="shop-b", ttl_seconds=60)
    with pytest.raises(ForbiddenError):
        TokenVerifier(SECRET, "shop-a").verify(token)


@pytest.mark.parametrize(
    "token",
    [
        issue_token(SECRET, user_id="u1", shop_id="shop-a", ttl_seconds=-120),  # expired past the leeway
        issue_token("another-secret-of-sufficient-length!!", user_id="u1", shop_id="shop-a", ttl_seconds=60),
        "not-a-jwt",
        jwt.encode({"sub": "u1", "shop_id": "shop-a"}, SECRET, algorithm="HS256"),  # no exp
        jwt.encode({"sub": "u1", "shop_id": "shop-a", "exp": 9999999999}, "", algorithm="none"),
    ],
)
def test_bad_tokens_are_unauthorized(token: str) -> None:
    with pytest.raises(UnauthorizedError):
        TokenVerifier(SECRET, "shop-a", leeway_seconds=30).verify(token)


def test_generated_secret_is_kept(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first, generated = load_or_create_secret(None, tmp_path)
    second, generated_again = load_or_create_secret(None, tmp_path)
    assert generated and not generated_again
    assert first == second and len(first) >= 32
    assert (tmp_path / "keys" / "jwt.secret").stat().st_mode & 0o077 == 0


def test_a_verified_token_is_answered_from_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(SECRET, "shop-a")
    token = issue_token(SECRET, user_id="u1", shop_id="shop-a", ttl_seconds=60)
    first = verifier.verify(token)
    decodes: list[str] = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decodes.append("decode"))
    assert verifier.verify(token) is first and decodes == []
    # Anything but the very same string is checked in full: a token with another signature is not the cached one.
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    monkeypatch.undo()
    with pytest.raises(UnauthorizedError):
        verifier.verify(forged)


def test_memory_never_outlives_the_token_and_keeps_no_refusals() -> None:
    verifier = TokenVerifier(SECRET, "shop-a", leeway_seconds=0)
    token = issue_token(SECRET, user_id="u1", shop_id="shop-a", ttl_seconds=1)
    verifier.verify(token)
    time.sleep(2.1)
    with pytest.raises(UnauthorizedError, match="expired"):
        verifier.verify(token)
    other_shop = issue_token(SECRET, user_id="u1", shop_id="shop-b", ttl_seconds=60)
    for _ in range(2):
        with pytest.raises(ForbiddenError):
            verifier.verify(other_shop)
