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


def foreign_key_index_dropped(app_label: str, model_name: str, name: str, field):
    """``field`` (the same foreign key with ``db_index=False``) for ``model_name.name``, with
    only the key's own index dropped from the database.

    Django's AlterField drops and re-adds the foreign key constraint for this, which checks
    every row of the table again under lock; the constraint itself does not change, so here
    only its single-column index goes (found by introspection, whatever its generated name),
    and the reverse builds it again.
    """
    from django.db import migrations

    def single_column_indexes(schema_editor, model, column):
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
        return [key for key, spec in constraints.items()
                if spec["index"] and spec["columns"] == [column] and not spec["unique"]
                and not spec["primary_key"] and not spec["foreign_key"]]

    def forwards(apps, schema_editor):
        model = apps.get_model(app_label, model_name)
        column = model._meta.get_field(name).column
        for index in single_column_indexes(schema_editor, model, column):
            schema_editor.execute(schema_editor._delete_index_sql(model, index))

    def backwards(apps, schema_editor):
        model = apps.get_model(app_label, model_name)
        old = model._meta.get_field(name)
        if not single_column_indexes(schema_editor, model, old.column):
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[old]))

    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AlterField(model_name=model_name, name=name, field=field)],
        database_operations=[migrations.RunPython(forwards, backwards)],
    )
