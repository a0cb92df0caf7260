"""Tell a unique violation apart from every other IntegrityError."""

from django.db import IntegrityError

POSTGRES_UNIQUE_VIOLATION = "23505"
SQLITE_UNIQUE_ERRORS = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}


def is_unique_violation(exc: IntegrityError, *, model=None, constraint: str | None = None
                        ) -> bool:
    """True only for a duplicate key; a check, not-null or foreign-key failure is a bug to raise.

    With ``model`` and ``constraint`` (the name of one of the model's UniqueConstraints), true
    only when that constraint failed: PostgreSQL names it, SQLite names its columns.
    """
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate is not None:
        unique = sqlstate == POSTGRES_UNIQUE_VIOLATION
        if unique and constraint is not None:
            return cause.diag.constraint_name == constraint
        return unique
    unique = getattr(cause, "sqlite_errorname", None) in SQLITE_UNIQUE_ERRORS
    if unique and constraint is not None:
        fields = next(c.fields for c in model._meta.constraints if c.name == constraint)
        table = model._meta.db_table
        columns = ", ".join(f"{table}.{model._meta.get_field(f).column}" for f in fields)
        return str(cause) == f"UNIQUE constraint failed: {columns}"
    return unique
