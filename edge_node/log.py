"""Logging set-up for the node's processes."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr in one line per record; idempotent."""
    root = logging.getLogger()
    if any(getattr(h, "_zakpos", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler._zakpos = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
