"""Security tests of the edge node (a package, so that its conftest is not the `conftest` of tests/edge_node/api)."""
