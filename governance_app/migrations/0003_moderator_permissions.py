"""The moderators' governance permissions: see proposals and votes, cancel, grant power."""

from django.db import migrations

MODERATOR_PERMISSIONS = [
    "view_proposal", "change_proposal", "view_vote",
    "view_votingpowercheckpoint", "add_votingpowercheckpoint",
]


def forwards(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("governance_app")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="moderators")
    group.permissions.add(*Permission.objects.filter(
        content_type__app_label="governance_app", codename__in=MODERATOR_PERMISSIONS
    ))


class Migration(migrations.Migration):
    dependencies = [
        ("governance_app", "0002_proposals_votes"),
        ("registry_site", "0002_defaults"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
