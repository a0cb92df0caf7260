"""Every index of the project's tables earns its writes: none repeats the leading columns of
another, and the audit trail has no pattern-ops twin of its action or hash index."""

import pytest
from django.db import IntegrityError, connection, transaction

from registry_site.models import AuditEvent

PROJECT_APPS = ("registry_site", "fees_app", "models_app", "governance_app", "accounts_app")

# A plain btree index whose key columns (and operator classes) begin another btree index of
# the same table: the other one answers every lookup it could, and each write updated both.
REDUNDANT = """
SELECT a.indrelid::regclass::text, ia.relname, ib.relname
FROM pg_index a
JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
JOIN pg_class ia ON ia.oid = a.indexrelid
JOIN pg_class ib ON ib.oid = b.indexrelid
JOIN pg_am ama ON ama.oid = ia.relam
JOIN pg_am amb ON amb.oid = ib.relam
WHERE ama.amname = 'btree' AND amb.amname = 'btree'
  AND NOT a.indisunique AND a.indpred IS NULL AND b.indpred IS NULL
  AND a.indexprs IS NULL AND b.indexprs IS NULL
  AND a.indnkeyatts <= b.indnkeyatts
  AND (a.indkey::int2[])[0:a.indnkeyatts - 1] = (b.indkey::int2[])[0:a.indnkeyatts - 1]
  AND (a.indclass::oid[])[0:a.indnkeyatts - 1] = (b.indclass::oid[])[0:a.indnkeyatts - 1]
"""

PATTERN_OPS = """
SELECT i.indrelid::regclass::text, c.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_opclass oc ON oc.oid = ANY (i.indclass::oid[])
WHERE oc.opcname LIKE '%%pattern_ops' AND i.indrelid = %s::regclass
"""


def _ours(table: str) -> bool:
    return table.split(".")[-1].startswith(tuple(f"{app}_" for app in PROJECT_APPS))


@pytest.mark.postgres
@pytest.mark.django_db
def test_no_index_repeats_the_leading_columns_of_another():
    with connection.cursor() as cursor:
        cursor.execute(REDUNDANT)
        redundant = sorted({(table, index, covering) for table, index, covering
                            in cursor.fetchall() if _ours(table)})
    assert redundant == [], (
        "drop these indexes (db_index=False on the field), the second index covers them: "
        f"{redundant}")


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_audit_trail_has_no_pattern_ops_index():
    with connection.cursor() as cursor:
        cursor.execute(PATTERN_OPS, [AuditEvent._meta.db_table])
        assert cursor.fetchall() == []


@pytest.mark.django_db
def test_two_sealed_events_cannot_share_a_hash():
    fields = {"action": "test.event", "created_at": "2026-12-02T00:00:00Z", "prev_hash": "0" * 64,
              "hash": "a" * 64}
    AuditEvent.objects.create(seq=1, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.create(seq=2, **fields)
