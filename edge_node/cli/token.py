"""`edge-node token`: print a JWT signed with the node's secret."""

from __future__ import annotations

import argparse
import sys

from edge_node.auth import DEFAULT_TTL_SECONDS, issue_token, load_or_create_secret
from edge_node.config import EdgeConfig


def token(config: EdgeConfig, args: argparse.Namespace) -> int:
    """Mint a token for `--user-id` of `--shop-id` (default: this node's shop)."""
    secret, _generated = load_or_create_secret(config.auth.jwt_secret, config.storage.data_dir)
    ttl = args.ttl if args.ttl is not None else DEFAULT_TTL_SECONDS
    if ttl <= 0:
        sys.stderr.write("edge-node token: --ttl must be positive\n")
        return 2
    sys.stdout.write(
        issue_token(secret, user_id=args.user_id, shop_id=args.shop_id or config.auth.shop_id, ttl_seconds=ttl,
                    role=args.role) + "\n"
    )
    return 0
