"""The moderators' governance permissions: see proposals and votes, cancel, grant power."""

from django.db import migrations

from registry_site.migration_helpers import grant_moderator_permissions

MODERATOR_PERMISSIONS = [
    "view_proposal", "change_proposal", "view_vote",
    "view_votingpowercheckpoint", "add_votingpowercheckpoint",
]


def forwards(apps, schema_editor):
    grant_moderator_permissions(apps, "governance_app", MODERATOR_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("governance_app", "0002_proposals_votes"),
        ("registry_site", "0002_defaults"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
