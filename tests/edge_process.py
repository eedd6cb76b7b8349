"""The real node process for integration tests lives in bench (benchmarks use it too)."""

from bench.node_process import SECRET, SHOP, EdgeProcess, free_port

__all__ = ["SECRET", "SHOP", "EdgeProcess", "free_port"]
