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


class RegistryError(CentralError):
    """A model registry request that cannot be done as asked (the operator has to change something)."""


class BundleInvalidError(RegistryError):
    """The uploaded folder or tar is not a usable bundle: bad manifest, unsafe names, missing or altered files."""


class BundleSignatureError(BundleInvalidError):
    """The bundle's `manifest.sig` is missing, malformed, or not made by one of `registry.trusted_keys`."""


class BundleConflictError(RegistryError):
    """NAME VERSION is already stored with different content: versions are immutable, upload a new version."""


class BundleNotFoundError(RegistryError):
    """No stored bundle has that name and version."""


class NothingToRollBackError(RegistryError):
    """The model has no active rollout to roll back."""


class AnnounceError(BrokerError):
    """The change is saved, but the broker did not take its announcement (the next connect or change repairs it)."""
