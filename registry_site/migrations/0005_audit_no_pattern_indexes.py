"""The audit trail's action index and hash uniqueness without their pattern-ops twins.

On PostgreSQL a field's db_index or unique also builds a varchar_pattern_ops index, for LIKE
queries; nothing runs one on an action or a hash, and every audited write and every seal wrote
both. The new index and constraint are built before the old ones go, so the hash is never
without its uniqueness.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("registry_site", "0004_audit_sealer"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["action"], name="audit_action_idx"),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(fields=("hash",), name="audit_hash_unique"),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
    ]
