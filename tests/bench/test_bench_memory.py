"""The memory benchmark's readings of /proc and its options."""

from __future__ import annotations

import os

from bench.memory import _parse_env, memory_mb


def test_memory_of_this_process_is_read_from_proc() -> None:
    rss, peak = memory_mb(os.getpid())
    assert 5 < rss <= peak < 100_000


def test_node_settings_are_parsed_as_pairs() -> None:
    assert _parse_env(None) == {}
    assert _parse_env("EDGE_A=1,EDGE_B=x=y") == {"EDGE_A": "1", "EDGE_B": "x=y"}
