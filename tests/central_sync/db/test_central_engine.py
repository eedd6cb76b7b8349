"""Database failures are classified at the boundary: data faults are not retriable, outages are."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from central_sync.db.engine import sqlstate, translate


class _PgError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(f"pg error {code}")
        self.sqlstate = code


@pytest.mark.parametrize(
    ("code", "retriable"),
    [("22003", False), ("23505", False), ("54000", False), ("40P01", True), ("57P01", True), ("08006", True),
     ("42P01", True)],
)
def test_sqlstate_classes(code: str, retriable: bool) -> None:
    err = DBAPIError("INSERT ...", {}, _PgError(code))
    assert sqlstate(err) == code
    translated = translate(err, "writing")
    assert translated.retriable is retriable and translated.message.startswith("writing: pg error")


def test_connection_errors_are_retriable() -> None:
    assert translate(OperationalError("connect", {}, OSError("refused")), "connecting").retriable
    assert translate(OSError("refused"), "connecting").retriable
    assert translate(TimeoutError(), "connecting").message == "connecting: TimeoutError"
