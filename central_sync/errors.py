"""The central service's error root. Library errors are translated into these at the boundary (`raise ... from err`).

`retriable` says whether doing the same thing again later may succeed (a database or broker that is down) or
not (a message that is wrong in itself), like aiokafka's errors.
"""

from __future__ import annotations


class CentralError(Exception):
    """Root of every error the central service raises on purpose."""

    retriable: bool = False

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retriable is not None:
            self.retriable = retriable


class ConfigError(CentralError):
    """The configuration could not be loaded; `problems` lists `path: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(problems))
        self.problems = problems


class DatabaseError(CentralError):
    """PostgreSQL refused or failed a statement; retriable when the connection, not the data, was at fault."""

    retriable = True


class MigrationError(CentralError):
    """The schema could not be brought to the head revision."""


class BrokerError(CentralError):
    """The MQTT broker could not be reached or refused us."""

    retriable = True


class KafkaUnavailableError(CentralError):
    """Kafka could not take the relay's records now; the outbox keeps them until it can."""

    retriable = True


class RejectedMessage(CentralError):
    """An upstream message that is not written as data; `reason` goes to the `rejects` table."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
