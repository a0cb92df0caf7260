"""The default fee schedules (version 1 of each type) and the moderators' fee permissions."""

from django.db import migrations

from registry_site.migration_helpers import grant_moderator_permissions

SCHEDULES = [
    # fee_type, method, base, unit, min, max
    ("registration", "linear", 1000, 1, 1000, 1_000_000),
    ("execution", "fixed", 100, 1, 1, 1_000_000),
    ("storage", "linear", 0, 1, 0, 1_000_000),
    ("proposal", "fixed", 10_000, 0, 10_000, 10_000),
    ("update", "linear", 500, 1, 1, 500_000),
]

MODERATOR_PERMISSIONS = [
    "view_feeschedule", "add_feeschedule", "view_account", "change_account", "view_ledgerentry",
]


def forwards(apps, schema_editor):
    FeeSchedule = apps.get_model("fees_app", "FeeSchedule")
    for fee_type, method, base, unit, low, high in SCHEDULES:
        FeeSchedule.objects.get_or_create(
            fee_type=fee_type, version=1,
            defaults={"method": method, "base_fee": base, "unit_fee": unit, "min_fee": low,
                      "max_fee": high, "step_size": 1000, "is_active": True,
                      "reason": "Default schedule"},
        )

    grant_moderator_permissions(apps, "fees_app", MODERATOR_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("fees_app", "0001_initial"),
        ("registry_site", "0002_defaults"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
