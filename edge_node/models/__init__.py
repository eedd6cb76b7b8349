"""Model updates on the node: download, verify, stage, self-test, swap, watch, roll back, shadow (DESIGN §6)."""
