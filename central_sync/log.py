"""Logging set-up for the central service's processes."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr, one line per record; idempotent.

    Below DEBUG, aiokafka's per-attempt connection errors and Alembic's plugin chatter are muted: the relay and
    the migrator log what matters themselves.
    """
    root = logging.getLogger()
    if not any(getattr(h, "_zakpos_central", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler._zakpos_central = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    quiet = root.level > logging.DEBUG
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL if quiet else logging.DEBUG)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING if quiet else logging.DEBUG)
