"""What the service's functions raise. Messages name the record (ids), never answer text or emails."""

from __future__ import annotations

from toolkit.errors import GtkitError, Problem


class LocalJobError(GtkitError, ValueError):
    """A local job cannot run (bad manifest line, bad option); the message names the record."""


class ServiceError(GtkitError):
    """Base of everything below."""


class NotFound(ServiceError, KeyError):
    """No such user, team, job, object or invitation."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Invalid(ServiceError, ValueError):
    """Bad input (an option out of range, a bad manifest line, a weak password)."""


class Refused(ServiceError):
    """A valid request the current state does not allow (no free place, job cancelled, link used)."""


class NotInTeam(Refused):
    """The user is not in the team of the object's job: the web answers 404, as for an object that
    does not exist, so nobody learns what other teams' jobs hold."""


class WeakToken(Invalid):
    """A user-chosen portal access token too short to resist guessing over the network."""

    hint = "(--access-token or $GTKIT_ACCESS_TOKEN)"


class DatabaseUrlError(Invalid):
    """A database URL gtkit cannot use (not a URL, or neither SQLite nor PostgreSQL); never quoted (it may
    hold a password)."""

    hint = "(--db or $GTKIT_DB)"


class PortalAddressError(GtkitError, OSError):
    """The portal cannot listen where it was asked to (port in use, an address this machine lacks)."""


class SubmissionInvalid(Invalid):
    """An answer that fails validation; its `problems` name fields, never values."""

    def __init__(self, message: str, problems: list[Problem]) -> None:
        super().__init__(message, problems=problems)


class MigrationError(ServiceError):
    """A schema migration left rows that refer to rows that do not exist (SQLite foreign_key_check)."""
