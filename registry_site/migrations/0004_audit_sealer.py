"""Audit events are appended unsealed and sealed into the chain later by one sealer.

Existing events were chained in id order, so they get their positions in id order; their
digests did not cover the position, and legacy_seq records how far that older digest applies.
On PostgreSQL a trigger makes sealed rows immutable.
"""

from django.db import migrations, models

from registry_site.migration_helpers import postgresql_only

NUMBER_BATCH = 2000

GUARD_SQL = """
CREATE FUNCTION registry_site_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit event % cannot be deleted: the audit trail is append-only',
            OLD.id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.seq IS NOT NULL THEN
        RAISE EXCEPTION 'audit event % is sealed and cannot be changed', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.id, NEW.created_at, NEW.actor_id, NEW.action, NEW.target_type, NEW.target_id,
        NEW.ip, NEW.details)
       IS DISTINCT FROM (OLD.id, OLD.created_at, OLD.actor_id, OLD.action, OLD.target_type,
                         OLD.target_id, OLD.ip, OLD.details) THEN
        RAISE EXCEPTION 'audit event %: sealing sets seq, prev_hash and hash, nothing else',
            OLD.id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER registry_site_audit_guard
    BEFORE UPDATE OR DELETE ON registry_site_auditevent
    FOR EACH ROW EXECUTE FUNCTION registry_site_audit_guard();
"""

UNGUARD_SQL = """
DROP TRIGGER IF EXISTS registry_site_audit_guard ON registry_site_auditevent;
DROP FUNCTION IF EXISTS registry_site_audit_guard();
"""


def number_existing_events(apps, schema_editor):
    AuditEvent = apps.get_model("registry_site", "AuditEvent")
    AuditChainHead = apps.get_model("registry_site", "AuditChainHead")
    seq, batch = 0, []
    for event in AuditEvent.objects.order_by("id").only("id").iterator(chunk_size=NUMBER_BATCH):
        seq += 1
        event.seq = seq
        batch.append(event)
        if len(batch) == NUMBER_BATCH:
            AuditEvent.objects.bulk_update(batch, ["seq"])
            batch = []
    if batch:
        AuditEvent.objects.bulk_update(batch, ["seq"])
    AuditChainHead.objects.filter(pk=1).update(last_seq=seq, legacy_seq=seq)


class Migration(migrations.Migration):

    dependencies = [
        ("registry_site", "0003_audit_checkpoint"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditchainhead", name="last_seq",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="auditchainhead", name="legacy_seq",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="auditevent", name="seq",
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent", name="prev_hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent", name="hash",
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
        migrations.RunPython(number_existing_events, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(condition=models.Q(("seq__isnull", True)), fields=["id"],
                               name="audit_unsealed_idx"),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("hash__isnull", True), ("prev_hash__isnull", True),
                             ("seq__isnull", True)),
                    models.Q(("hash__isnull", False), ("prev_hash__isnull", False),
                             ("seq__gte", 1)),
                    _connector="OR",
                ),
                name="audit_sealed_whole",
            ),
        ),
        postgresql_only(GUARD_SQL, UNGUARD_SQL),
    ]
