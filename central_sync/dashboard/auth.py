"""Who may read the dashboard: HS256 bearer tokens signed with `dashboard.jwt_secret`.

Claims: `sub` (user id) and `exp` are required. `role: "operator"` sees every shop; any other caller must carry
`shop_id` and sees that shop only (asking for another shop is 403, never a silent empty answer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from central_sync.config import DashboardConfig
from central_sync.dashboard.errors import DashboardError

ALGORITHM = "HS256"
OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller of a dashboard endpoint."""

    user_id: str
    role: str
    shop_id: str | None

    @property
    def sees_all(self) -> bool:
        """Operators see every shop."""
        return self.role == OPERATOR

    def shops(self, requested: str | None) -> list[str] | None:
        """The shops a query covers: None means all (operators only); a shop user always gets their own."""
        if self.sees_all:
            return [requested] if requested else None
        if requested and requested != self.shop_id:
            raise DashboardError(403, "FORBIDDEN", "this token may only see its own shop")
        return [str(self.shop_id)]


def issue_token(secret: str, *, user_id: str, ttl_seconds: int, shop_id: str | None = None) -> str:
    """A dashboard token: an operator's (all shops) when `shop_id` is None, else a shop user's."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    claims.update({"shop_id": shop_id} if shop_id else {"role": OPERATOR})
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def viewer_from_header(header: str, config: DashboardConfig) -> Viewer:
    """The viewer of an `Authorization: Bearer <jwt>` header; 401/403/503 as DashboardError."""
    if not config.jwt_secret:
        raise DashboardError(503, "SERVICE_UNAVAILABLE", "the dashboard is not configured: set dashboard.jwt_secret")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DashboardError(401, "UNAUTHORIZED", "missing bearer token: send 'Authorization: Bearer <token>'")
    try:
        claims = jwt.decode(
            token.strip(), config.jwt_secret, algorithms=[ALGORITHM], leeway=config.leeway_seconds,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError as err:
        raise DashboardError(401, "UNAUTHORIZED", "the token has expired") from err
    except jwt.InvalidTokenError as err:
        raise DashboardError(401, "UNAUTHORIZED", f"the token is not valid: {err}") from err
    role = str(claims.get("role") or "")
    shop_id = claims.get("shop_id")
    if role != OPERATOR and not shop_id:
        raise DashboardError(403, "FORBIDDEN", "the token carries neither role 'operator' nor a shop_id")
    return Viewer(user_id=str(claims["sub"]), role=role, shop_id=str(shop_id) if shop_id else None)
