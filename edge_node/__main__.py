"""`edge-node serve | token | ocr`: the node's command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge_node.config import ConfigError, EdgeConfig, load_config
from edge_node.log import configure_logging

_LOGGER = logging.getLogger("edge_node")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-node", description="ZakPOS OCR edge node")
    parser.add_argument("--config", type=Path, help="YAML config file (EDGE_* variables override it)")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API and the job workers")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", type=Path)
    token = sub.add_parser("token", help="print a JWT for a shop user, signed with the node's secret")
    token.add_argument("--shop-id", help="default: the node's shop")
    token.add_argument("--user-id", required=True)
    token.add_argument("--role", default="clerk", choices=["clerk", "admin"])
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds (default 12 h)")
    token.add_argument("--data-dir", type=Path)
    ocr = sub.add_parser("ocr", help="OCR image files locally and print one JSON result per line")
    ocr.add_argument("files", nargs="+", type=Path)
    ocr.add_argument("--type", default="product", choices=["product", "receipt", "invoice", "barcode"])
    ocr.add_argument("--language", default="en", choices=["en", "bn"])
    ocr.add_argument("--confidence-threshold", type=float, default=0.8)
    return parser


def _with_overrides(config: EdgeConfig, args: argparse.Namespace) -> EdgeConfig:
    server = config.server.model_copy(
        update={k: v for k, v in (("host", getattr(args, "host", None)), ("port", getattr(args, "port", None)))
                if v is not None}
    )
    storage = config.storage
    if getattr(args, "data_dir", None) is not None:
        storage = storage.model_copy(update={"data_dir": args.data_dir})
    return config.model_copy(update={"server": server, "storage": storage})


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `edge-node` console script."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        config = _with_overrides(load_config(args.config), args)
    except ConfigError as err:
        sys.stderr.write("edge-node: invalid configuration\n")
        for problem in err.problems:
            sys.stderr.write(f"  {problem}\n")
        return 2
    if args.command == "serve":
        from edge_node.cli.serve import serve

        return serve(config)
    if args.command == "token":
        from edge_node.cli.token import token

        return token(config, args)
    from edge_node.cli.ocr import ocr_files

    return ocr_files(config, args)


if __name__ == "__main__":
    sys.exit(main())
