"""Helpers for tests of the audit trail: seal what was recorded, and tamper as an attacker."""

from contextlib import contextmanager

from django.db import connection

from registry_site.audit import audit_seal
from registry_site.models import AuditEvent


def sealed(events):
    """Seal every committed event (in a test's transaction, every event) and return these
    events as stored now, with their chain position and hash."""
    audit_seal()
    stored = AuditEvent.objects.in_bulk([event.pk for event in events])
    return [stored[event.pk] for event in events]


@contextmanager
def tampering():
    """Write to the audit table as a database superuser would: on PostgreSQL the trigger that
    refuses changes to sealed rows is switched off for this session, as only a superuser can."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = origin")
