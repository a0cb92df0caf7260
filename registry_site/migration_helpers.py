"""Helpers for data migrations (kept stable: applied migrations import them)."""

from django.contrib.auth.management import create_permissions

from registry_site.roles import MODERATORS_GROUP


def grant_moderator_permissions(apps, app_label: str, codenames: list[str]) -> None:
    """Give the moderators group these permissions of one app, creating both if needed.

    Permissions are normally created after all migrations ran; a data migration that needs
    them creates them itself first.
    """
    app_config = apps.get_app_config(app_label)
    app_config.models_module = True
    create_permissions(app_config, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=MODERATORS_GROUP)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
    )


def postgresql_only(sql: str, reverse_sql: str):
    """A RunSQL that runs on PostgreSQL and does nothing on any other database (SQLite has
    neither plpgsql nor these guarantees to enforce)."""
    from django.db import migrations

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(reverse_sql, params=None)

    return migrations.RunPython(forwards, backwards)
