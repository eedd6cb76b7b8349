"""JWT tokens: HS256 shared secrets and EdDSA (Ed25519) public keys; a `kid` header picks a key of a rotated set.

Claims: `sub` (user id), `shop_id`, `exp`, optional `role` (`clerk`, the default, or `admin`). A token without
`kid` is checked against the default keys (`auth.jwt_secret` for HS256, `auth.jwt_public_key_file` for EdDSA);
a token with a `kid` only against that key. Each key accepts the one algorithm its type implies, so a public
key can never be used as an HMAC secret and `alg: none` is never accepted.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from edge_node.config import AuthConfig, ConfigError
from edge_node.errors import ForbiddenError, UnauthorizedError

HS256 = "HS256"
EDDSA = "EdDSA"
#: Kept for callers that mint HS256 tokens (the CLI, tests).
ALGORITHM = HS256
#: Tokens minted by `edge-node token` live this long unless asked otherwise.
DEFAULT_TTL_SECONDS = 12 * 3600
#: A clerk scans and reads the shop's jobs; an admin may also retry, delete, read stored images and metrics.
ROLE_CLERK = "clerk"
ROLE_ADMIN = "admin"
ROLES = frozenset({ROLE_CLERK, ROLE_ADMIN})
#: A verified token is trusted again without re-checking its signature for this long (never past its `exp`):
#: a tablet sends the same token with every scan, and a check costs ~0.2 ms of the event loop. Tokens are not
#: revocable (they expire), and the keys are fixed for the life of the process, so the cache cannot go stale.
VERIFIED_CACHE_SECONDS = 60.0
#: Distinct tokens remembered at once (a shop has a few tablets; the oldest entries go first).
VERIFIED_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling."""

    user_id: str
    shop_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        """True for the `admin` role."""
        return self.role == ROLE_ADMIN


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One key and the single algorithm it verifies."""

    algorithm: str
    key: str | Ed25519PublicKey

    @classmethod
    def hs256(cls, secret: str) -> VerificationKey:
        """An HS256 shared secret."""
        return cls(HS256, secret)

    @classmethod
    def eddsa(cls, pem: bytes) -> VerificationKey:
        """An Ed25519 public key in PEM; ValueError for anything else."""
        key = load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"expected an Ed25519 public key, got {type(key).__name__}")
        return cls(EDDSA, key)


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


def issue_token(
    key: str | Ed25519PrivateKey,
    *,
    user_id: str,
    shop_id: str,
    ttl_seconds: int,
    role: str = ROLE_CLERK,
    kid: str | None = None,
) -> str:
    """Mint a token (for the CLI and tests): HS256 with a secret, EdDSA with an Ed25519 private key."""
    now = int(time.time())
    claims = {"sub": user_id, "shop_id": shop_id, "role": role, "iat": now, "exp": now + ttl_seconds}
    algorithm = EDDSA if isinstance(key, Ed25519PrivateKey) else HS256
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid} if kid is not None else None)


class TokenVerifier:
    """Checks tokens and that they belong to this node's shop."""

    def __init__(
        self,
        secret: str | None,
        shop_id: str,
        leeway_seconds: int = 30,
        *,
        public_key: VerificationKey | None = None,
        keys: Mapping[str, VerificationKey] | None = None,
    ) -> None:
        self._defaults: dict[str, VerificationKey] = {}
        if secret:
            self._defaults[HS256] = VerificationKey.hs256(secret)
        if public_key is not None:
            self._defaults[public_key.algorithm] = public_key
        self._keys = dict(keys or {})
        self._shop_id = shop_id
        self._leeway = leeway_seconds
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def _key_for(self, token: str) -> VerificationKey:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as err:
            raise UnauthorizedError(f"the token is not valid: {err}") from err
        kid = header.get("kid")
        if kid is not None:
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise UnauthorizedError("the token names a key id this node does not know")
            return key
        key = self._defaults.get(str(header.get("alg")))
        if key is None:
            raise UnauthorizedError(f"tokens signed with {header.get('alg')!r} are not accepted here")
        return key

    def verify(self, token: str) -> Principal:
        """401 for a missing, malformed, forged or expired token; 403 for another shop's token or an unknown role.

        A token verified in the last VERIFIED_CACHE_SECONDS (and not expired) is answered from memory."""
        now = time.time()
        cached = self._verified.pop(token, None)
        if cached is not None and now < cached[1]:
            self._verified[token] = cached  # most recently used last
            return cached[0]
        principal, expires_at = self._check(token)
        self._verified[token] = (principal, min(expires_at, now + VERIFIED_CACHE_SECONDS))
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _check(self, token: str) -> tuple[Principal, float]:
        """Full verification: the principal and the time until which the token stays valid (exp + leeway)."""
        key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
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
        role = str(claims.get("role", ROLE_CLERK))
        if role not in ROLES:
            raise ForbiddenError(f"unknown role {role!r}", details={"allowed": sorted(ROLES)})
        return Principal(user_id=str(claims["sub"]), shop_id=shop_id, role=role), float(claims["exp"]) + self._leeway


def build_verifier(auth: AuthConfig, default_secret: str | None) -> TokenVerifier:
    """The verifier of a node: default secret and public key plus the keys by kid; unreadable key files are
    configuration errors naming the field."""
    problems: list[str] = []

    def public_key(path: Path, field: str) -> VerificationKey | None:
        try:
            return VerificationKey.eddsa(path.read_bytes())
        except (OSError, ValueError) as err:
            problems.append(f"{field}: cannot load the Ed25519 public key {path}: {err}")
            return None

    default_public = (
        public_key(auth.jwt_public_key_file, "auth.jwt_public_key_file") if auth.jwt_public_key_file else None
    )
    by_kid: dict[str, VerificationKey] = {}
    for kid, entry in auth.keys.items():
        if entry.secret is not None:
            by_kid[kid] = VerificationKey.hs256(entry.secret)
        elif entry.public_key_file is not None and (loaded := public_key(entry.public_key_file,
                                                                         f"auth.keys.{kid}.public_key_file")):
            by_kid[kid] = loaded
    if problems:
        raise ConfigError(problems)
    return TokenVerifier(default_secret, auth.shop_id, auth.leeway_seconds, public_key=default_public, keys=by_kid)
