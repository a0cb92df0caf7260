"""GIN indexes for full-text search and tag containment, on PostgreSQL only.

They are not in Registration.Meta.indexes because SQLite cannot build them; this migration
does nothing on other databases, so SQLite and ``makemigrations --check`` stay clean. The
full-text index expression is the one models_app.search.search_vector() builds for queries.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

SEARCH_INDEX = GinIndex(
    SearchVector("name", "version", "description", "tags", config="simple"),
    name="reg_search_gin_idx",
)
TAGS_INDEX = GinIndex(fields=["tags"], opclasses=["jsonb_path_ops"], name="reg_tags_gin_idx")


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    Registration = apps.get_model("models_app", "Registration")
    schema_editor.add_index(Registration, SEARCH_INDEX)
    schema_editor.add_index(Registration, TAGS_INDEX)


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    Registration = apps.get_model("models_app", "Registration")
    schema_editor.remove_index(Registration, SEARCH_INDEX)
    schema_editor.remove_index(Registration, TAGS_INDEX)


class Migration(migrations.Migration):
    dependencies = [("models_app", "0002_names_storage_charges")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
