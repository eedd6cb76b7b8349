"""`central-sync token` mints dashboard tokens the dashboard accepts."""

from __future__ import annotations

import subprocess
import sys

import jwt

from central_sync.config import DashboardConfig
from central_sync.dashboard.auth import viewer_from_header

SECRET = "dashboard-secret-long-enough-for-hs256!!"


def _token(*args: str, secret: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"} | ({"CENTRAL_DASHBOARD__JWT_SECRET": secret} if secret else {})
    return subprocess.run([sys.executable, "-m", "central_sync", "token", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_operator_and_shop_tokens_are_accepted_by_the_dashboard() -> None:
    config = DashboardConfig(jwt_secret=SECRET)
    operator = _token("--user-id", "ops")
    assert operator.returncode == 0, operator.stderr
    viewer = viewer_from_header(f"Bearer {operator.stdout.strip()}", config)
    assert viewer.sees_all
    shop = _token("--user-id", "owner", "--shop-id", "shop-7", "--ttl", "60")
    claims = jwt.decode(shop.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["shop_id"] == "shop-7" and claims["exp"] - claims["iat"] == 60
    assert not viewer_from_header(f"Bearer {shop.stdout.strip()}", config).sees_all


def test_without_a_secret_it_says_what_to_set() -> None:
    done = _token("--user-id", "ops", secret=None)
    assert done.returncode == 2 and "CENTRAL_DASHBOARD__JWT_SECRET" in done.stderr
