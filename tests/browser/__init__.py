"""Browser tests (a package, so that this folder's conftest never shadows another folder's `conftest` module)."""
