"""Tell a unique violation apart from every other IntegrityError."""

from django.db import IntegrityError

POSTGRES_UNIQUE_VIOLATION = "23505"
SQLITE_UNIQUE_ERRORS = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}


def is_unique_violation(exc: IntegrityError) -> bool:
    """True only for a duplicate key; a check, not-null or foreign-key failure is a bug to raise."""
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate == POSTGRES_UNIQUE_VIOLATION
    return getattr(cause, "sqlite_errorname", None) in SQLITE_UNIQUE_ERRORS
