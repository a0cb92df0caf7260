"""Text search over registrations: PostgreSQL full-text with a GIN index, or a plain match.

The PostgreSQL expression index (migration 0003) is built from ``search_vector()``; a query
uses the index only while the two expressions stay identical, so change them together.
"""

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connections
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

# "simple" keeps names and version strings as written (no stemming, no stop words), which
# suits model names such as "bert-base-uncased" or "v2.1" better than a language dictionary.
SEARCH_CONFIG = "simple"
SEARCH_INDEX_NAME = "reg_search_gin_idx"
TAGS_INDEX_NAME = "reg_tags_gin_idx"
MAX_TERMS_LENGTH = 200


def search_vector() -> SearchVector:
    return SearchVector("name", "version", "description", "tags", config=SEARCH_CONFIG)


def is_postgresql(queryset) -> bool:
    return connections[queryset.db].vendor == "postgresql"


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
        return queryset.annotate(search=search_vector()).filter(search=_query(terms))
    return queryset.filter(
        Q(name__icontains=terms) | Q(version__icontains=terms)
        | Q(description__icontains=terms) | Q(tags__icontains=terms)
    )


def rank_by_relevance(queryset, terms: str):
    """Annotate PostgreSQL matches with ``rank``, higher for a better match."""
    return queryset.annotate(rank=SearchRank(search_vector(), _query(terms)))


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
