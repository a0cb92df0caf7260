"""A stored full-text document column on PostgreSQL, replacing the expression index of 0003.

With an expression index PostgreSQL recomputes ``to_tsvector`` for every row it rechecks,
filters after another index or ranks, which made a search for a common word take seconds
on 100,000 registrations. ``search_document`` is computed once when a row is written
(GENERATED ... STORED, so inserts and updates from any code fill it) and only read after.

The column is not a field of Registration: Django names its columns in every INSERT, UPDATE
and SELECT, so it never writes or reads this one; only models_app.search refers to it.
SQLite gets nothing, which keeps its schema and ``makemigrations --check`` clean. The text
is the one 0003 indexed (name, version, description and tags as JSON text, "simple"
configuration), so matches and ranks are unchanged.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

COLUMN = "search_document"
INDEX = "reg_search_document_idx"
# The same text SearchVector("name", "version", "description", "tags") builds; every part is
# IMMUTABLE (an explicit regconfig, jsonb::text), as a generated column requires.
DOCUMENT = (
    "to_tsvector('simple'::regconfig, "
    "COALESCE(name, '')::text || ' ' || COALESCE(version, '')::text || ' ' || "
    "COALESCE(description, '') || ' ' || COALESCE(tags::text, ''))"
)
OLD_SEARCH_INDEX = GinIndex(
    SearchVector("name", "version", "description", "tags", config="simple"),
    name="reg_search_gin_idx",
)


def add_search_document(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    Registration = apps.get_model("models_app", "Registration")
    table = schema_editor.quote_name(Registration._meta.db_table)
    schema_editor.execute(
        f"ALTER TABLE {table} ADD COLUMN {COLUMN} tsvector "
        f"GENERATED ALWAYS AS ({DOCUMENT}) STORED"
    )
    schema_editor.execute(f"CREATE INDEX {INDEX} ON {table} USING gin ({COLUMN})")
    schema_editor.remove_index(Registration, OLD_SEARCH_INDEX)


def drop_search_document(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    Registration = apps.get_model("models_app", "Registration")
    table = schema_editor.quote_name(Registration._meta.db_table)
    schema_editor.add_index(Registration, OLD_SEARCH_INDEX)
    # Dropping the column drops its index too.
    schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN {COLUMN}")


class Migration(migrations.Migration):
    dependencies = [("models_app", "0005_usage_executions_index")]

    operations = [migrations.RunPython(add_search_document, drop_search_document)]
