"""`central-sync serve | migrate | token | models`: the central service's command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from central_sync.config import CentralConfig, load_config
from central_sync.errors import CentralError, ConfigError
from central_sync.log import configure_logging
from central_sync.models_cli import add_parser as add_models_parser
from central_sync.models_cli import run as run_models

_LOGGER = logging.getLogger("central_sync")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="central-sync", description="ZakPOS OCR central sync service")
    parser.add_argument("--config", type=Path, help="YAML config file (CENTRAL_* variables override it)")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="ingest from MQTT into PostgreSQL, relay to Kafka, serve /api/v1/health")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    migrate = sub.add_parser("migrate", help="upgrade the database schema (alembic upgrade); idempotent")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    token = sub.add_parser("token", help="print a dashboard token signed with dashboard.jwt_secret")
    token.add_argument("--user-id", required=True)
    token.add_argument("--shop-id", help="limit the token to one shop (default: an operator token, all shops)")
    token.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds (default 12 h)")
    add_models_parser(sub)
    return parser


def _token(config: CentralConfig, args: argparse.Namespace) -> int:
    from central_sync.dashboard.auth import issue_token

    if not config.dashboard.jwt_secret:
        sys.stderr.write("central-sync token: set dashboard.jwt_secret (CENTRAL_DASHBOARD__JWT_SECRET) first\n")
        return 2
    if args.ttl <= 0:
        sys.stderr.write("central-sync token: --ttl must be positive\n")
        return 2
    sys.stdout.write(
        issue_token(config.dashboard.jwt_secret, user_id=args.user_id, ttl_seconds=args.ttl, shop_id=args.shop_id)
        + "\n"
    )
    return 0


def _serve(config: CentralConfig, args: argparse.Namespace) -> int:
    from aiohttp import web

    from central_sync.app import create_app

    host = args.host or config.http.host
    port = args.port if args.port is not None else config.http.port
    web.run_app(create_app(config), host=host, port=port, print=None)
    return 0


def _migrate(config: CentralConfig, args: argparse.Namespace) -> int:
    from central_sync.db.migrate import upgrade

    revision = asyncio.run(upgrade(config.database.url, args.revision))
    _LOGGER.info("migrated to %s", revision)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `central-sync` console script."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        sys.stderr.write("central-sync: invalid configuration\n")
        for problem in err.problems:
            sys.stderr.write(f"  {problem}\n")
        return 2
    try:
        if args.command == "serve":
            return _serve(config, args)
        if args.command == "token":
            return _token(config, args)
        if args.command == "models":
            return run_models(config, args)
        return _migrate(config, args)
    except CentralError as err:
        _LOGGER.error("%s", err.message)
        return 1


if __name__ == "__main__":
    sys.exit(main())
