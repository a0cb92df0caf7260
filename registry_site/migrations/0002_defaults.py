"""Default parameter values and the moderators group."""

from django.db import migrations

from registry_site.migration_helpers import grant_moderator_permissions

DEFAULTS = {
    "voting_period_seconds": 604_800,
    "execution_period_seconds": 1_209_600,
    "min_voting_power": 1_000,
    "max_model_size": 104_857_600,
    "max_parameter_count": 1_000_000_000,
    "quorum_bps": 400,
    "registrations_paused": 0,
}

MODERATOR_PERMISSIONS = [
    "view_auditevent", "view_apitoken", "view_parameter", "view_parameterchange",
]


def forwards(apps, schema_editor):
    Parameter = apps.get_model("registry_site", "Parameter")
    for name, value in DEFAULTS.items():
        Parameter.objects.get_or_create(name=name, defaults={"value": value})

    grant_moderator_permissions(apps, "registry_site", MODERATOR_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("registry_site", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
