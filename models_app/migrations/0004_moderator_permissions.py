"""The moderators' permissions on the registry: read everything, change registrations."""

from django.db import migrations

MODERATOR_PERMISSIONS = [
    "view_registration", "change_registration", "view_statuschange", "view_usagestats",
    "view_modeluser", "view_modelname", "view_artifact", "view_storagecharge",
]


def forwards(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("models_app")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="moderators")
    group.permissions.add(*Permission.objects.filter(
        content_type__app_label="models_app", codename__in=MODERATOR_PERMISSIONS
    ))


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0003_postgresql_search_indexes"),
        ("fees_app", "0002_defaults"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
