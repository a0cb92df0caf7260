"""Default parameter values and the moderators group."""

from django.db import migrations

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
    ("registry_site", "view_auditevent"),
    ("registry_site", "view_apitoken"),
    ("registry_site", "view_parameter"),
    ("registry_site", "view_parameterchange"),
]


def forwards(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    Parameter = apps.get_model("registry_site", "Parameter")
    for name, value in DEFAULTS.items():
        Parameter.objects.get_or_create(name=name, defaults={"value": value})

    app_config = apps.get_app_config("registry_site")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="moderators")
    for app_label, codename in MODERATOR_PERMISSIONS:
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("registry_site", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
