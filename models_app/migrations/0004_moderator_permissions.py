"""The moderators' permissions on the registry: read everything, change registrations."""

from django.db import migrations

from registry_site.migration_helpers import grant_moderator_permissions

MODERATOR_PERMISSIONS = [
    "view_registration", "change_registration", "view_statuschange", "view_usagestats",
    "view_modeluser", "view_modelname", "view_artifact", "view_storagecharge",
]


def forwards(apps, schema_editor):
    grant_moderator_permissions(apps, "models_app", MODERATOR_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0003_postgresql_search_indexes"),
        ("fees_app", "0002_defaults"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
