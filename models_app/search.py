"""Text search over registrations: PostgreSQL full-text on a stored column, or a plain match.

On PostgreSQL, migration 0006 adds ``search_document``, a tsvector column the database
computes when a row is written (GENERATED ... STORED) from the name, version, description
and tags, with a GIN index on it. Queries read that column instead of calling
``to_tsvector`` per row, so neither the index recheck, a filter applied after another index,
nor the rank parses a description again. The column is not a Registration field (the ORM
would otherwise select and try to write it), so it is referred to here by name; its text is
set in that migration, and changing it means a new migration.
"""

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
from django.db import connections
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

# "simple" keeps names and version strings as written (no stemming, no stop words), which
# suits model names such as "bert-base-uncased" or "v2.1" better than a language dictionary.
# The generated column uses it too; a query in another configuration would miss words.
SEARCH_CONFIG = "simple"
SEARCH_COLUMN = "search_document"
SEARCH_INDEX_NAME = "reg_search_document_idx"
TAGS_INDEX_NAME = "reg_tags_gin_idx"
MAX_TERMS_LENGTH = 200


def is_postgresql(queryset) -> bool:
    return connections[queryset.db].vendor == "postgresql"


def _document(queryset) -> RawSQL:
    table = queryset.model._meta.db_table
    return RawSQL(f'"{table}"."{SEARCH_COLUMN}"', [], output_field=SearchVectorField())


def _query(terms: str) -> SearchQuery:
    # websearch syntax: words, "quoted phrases", -excluded; never a syntax error.
    return SearchQuery(terms.strip()[:MAX_TERMS_LENGTH], config=SEARCH_CONFIG,
                       search_type="websearch")


def search_registrations(queryset, terms: str):
    """Rows matching ``terms``: full-text on PostgreSQL, a case-insensitive match elsewhere."""
    terms = terms.strip()[:MAX_TERMS_LENGTH]
    if not terms:
        return queryset
    if is_postgresql(queryset):
        # alias(), not annotate(): the document is matched in WHERE, never sent to Python.
        return queryset.alias(search=_document(queryset)).filter(search=_query(terms))
    return queryset.filter(
        Q(name__icontains=terms) | Q(version__icontains=terms)
        | Q(description__icontains=terms) | Q(tags__icontains=terms)
    )


def rank_by_relevance(queryset, terms: str):
    """Annotate PostgreSQL matches with ``rank``, higher for a better match.

    ts_rank reads the stored document, so ranking every match of a common word costs a
    read per row, not a parse.
    """
    return queryset.annotate(rank=SearchRank(_document(queryset), _query(terms)))


def with_tag(queryset, tag: str):
    """Rows whose tags list holds ``tag`` exactly."""
    if is_postgresql(queryset):
        # jsonb containment, answered by the GIN index on tags.
        return queryset.filter(tags__contains=[tag])
    # SQLite has no JSON containment; look inside the array with json_each.
    table = queryset.model._meta.db_table
    return queryset.filter(RawSQL(
        f'EXISTS (SELECT 1 FROM json_each("{table}"."tags") WHERE json_each.value = %s)',
        (tag,), output_field=BooleanField(),
    ))
