"""JWT tokens: HS256 with the node's shared secret; claims `sub` (user id), `shop_id`, `exp`, optional `role`."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from edge_node.errors import ForbiddenError, UnauthorizedError

ALGORITHM = "HS256"
#: Tokens minted by `edge-node token` live this long unless asked otherwise.
DEFAULT_TTL_SECONDS = 12 * 3600


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling."""

    user_id: str
    shop_id: str
    role: str


def load_or_create_secret(configured: str | None, data_dir: Path) -> tuple[str, bool]:
    """The configured secret, else the one stored in DATA_DIR/keys/jwt.secret (created on first start).

    Returns (secret, generated_now).
    """
    if configured:
        return configured, False
    path = data_dir / "keys" / "jwt.secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret)
    return secret, True


def issue_token(secret: str, *, user_id: str, shop_id: str, ttl_seconds: int, role: str = "clerk") -> str:
    """Mint a token (for the CLI and tests)."""
    now = int(time.time())
    claims = {"sub": user_id, "shop_id": shop_id, "role": role, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class TokenVerifier:
    """Checks tokens and that they belong to this node's shop."""

    def __init__(self, secret: str, shop_id: str, leeway_seconds: int = 30) -> None:
        self._secret = secret
        self._shop_id = shop_id
        self._leeway = leeway_seconds

    def verify(self, token: str) -> Principal:
        """401 for a missing, malformed, forged or expired token; 403 for another shop's token."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                leeway=self._leeway,
                options={"require": ["exp", "sub", "shop_id"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise UnauthorizedError("the token has expired") from err
        except jwt.InvalidTokenError as err:
            raise UnauthorizedError(f"the token is not valid: {err}") from err
        shop_id = str(claims["shop_id"])
        if shop_id != self._shop_id:
            raise ForbiddenError("this token belongs to another shop", details={"shop_id": shop_id})
        return Principal(user_id=str(claims["sub"]), shop_id=shop_id, role=str(claims.get("role", "clerk")))
