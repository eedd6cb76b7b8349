"""Implementations of the `edge-node` sub-commands."""
