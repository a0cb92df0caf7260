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
from django.db.models.expressions import Col, RawSQL

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


def _document_field() -> SearchVectorField:
    field = SearchVectorField()
    field.column = SEARCH_COLUMN
    return field


_DOCUMENT_FIELD = _document_field()


def _document(queryset) -> Col:
    # A column reference, not raw SQL: inside a subquery Django renames the table (U0), and
    # a Col follows the rename where raw text would still name the outer table.
    return Col(queryset.model._meta.db_table, _DOCUMENT_FIELD)


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


# Best match ranks at most this many matches: the newest ones. A word that most models hold
# ("model") otherwise made every search read and rank most of the table to show 100 rows;
# a search wider than this is refined by more words or a filter, or ordered by a column.
RANK_CANDIDATES = 1000


def rank_by_relevance(queryset, terms: str):
    """The newest RANK_CANDIDATES PostgreSQL matches, annotated with ``rank`` (higher for a
    better match).

    The candidates are chosen first (PostgreSQL walks the newest-first index and stops, or
    sorts the few rows the GIN index finds), then only they are ranked.
    """
    candidates = queryset.order_by().values("pk")[:RANK_CANDIDATES]
    ranked = queryset.model._default_manager.filter(pk__in=candidates)
    ranked.query.select_related = queryset.query.select_related
    return ranked.annotate(rank=SearchRank(_document(ranked), _query(terms)))


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
