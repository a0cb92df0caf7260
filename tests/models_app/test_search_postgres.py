"""Full-text search on PostgreSQL reads the stored search_document column (migration 0006)."""

import pytest
from django.db import connection

from models_app.filtersets import RegistrationFilterSet
from models_app.models import Registration
from models_app.search import (
    MAX_TERMS_LENGTH,
    SEARCH_COLUMN,
    SEARCH_INDEX_NAME,
    rank_by_relevance,
    search_registrations,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def catalog(register, user):
    register(user, "whisper-tiny", "2.1.0", tags=["asr", "text-to-speech"],
             description="Speech recognition for English podcasts.")
    register(user, "resnet50", "v1.5", tags=["imagenet"],
             description="Residual network for image classification.")
    register(user, "bert-base", "1.0.0", tags=["nlp"],
             description="Text encoder, English and German, for classification.")


def found(terms: str) -> list[str]:
    return sorted(r.name for r in search_registrations(Registration.objects.all(), terms))


@pytest.mark.parametrize(("terms", "expected"), [
    ("resnet50", ["resnet50"]),                      # name
    ("bert-base", ["bert-base"]),                    # hyphenated name, as written
    ("v1.5", ["resnet50"]),                          # version
    ("2.1.0", ["whisper-tiny"]),
    ("podcasts", ["whisper-tiny"]),                  # description word
    ("classification", ["bert-base", "resnet50"]),
    ("imagenet", ["resnet50"]),                      # tag
    ("text-to-speech", ["whisper-tiny"]),            # hyphenated tag
    ("RESNET50", ["resnet50"]),                      # case-insensitive
    ("nothing-like-this", []),
])
def test_finds_name_version_description_and_tag_words(catalog, terms, expected):
    assert found(terms) == expected


@pytest.mark.parametrize(("terms", "expected"), [
    ('"image classification"', ["resnet50"]),        # quoted phrase, words in order
    ('"classification image"', []),
    ("classification -german", ["resnet50"]),        # exclusion
    ("english or imagenet", ["bert-base", "resnet50", "whisper-tiny"]),
    ("english classification", ["bert-base"]),       # all words
    ('"unclosed -', []),                             # never a syntax error
])
def test_websearch_syntax(catalog, terms, expected):
    assert found(terms) == expected


def test_terms_past_the_cap_are_ignored(catalog):
    terms = "resnet50 " * (MAX_TERMS_LENGTH // len("resnet50 "))
    assert found(terms + "-resnet50") == ["resnet50"]


def test_ranked_best_match_first_then_name_and_version(register, user):
    register(user, "b-few", description="speech model")
    register(user, "a-many", description="speech speech speech")
    register(user, "c-few", description="speech model")
    filterset = RegistrationFilterSet({"search": "speech"}, queryset=Registration.objects.all())
    assert [r.name for r in filterset.qs] == ["a-many", "b-few", "c-few"]
    ranked = rank_by_relevance(search_registrations(Registration.objects.all(), "speech"),
                               "speech")
    assert all(r.rank > 0 for r in ranked)


def test_new_and_updated_rows_are_searchable_at_once(register, user):
    created = register(user, "fresh-model", description="handles zebrafish images")
    assert found("zebrafish") == ["fresh-model"]
    # The database recomputes the stored document on every UPDATE, whoever writes it.
    Registration.objects.filter(pk=created.pk).update(description="now about axolotls")
    assert found("axolotls") == ["fresh-model"]
    assert found("zebrafish") == []


def test_orm_never_selects_or_writes_the_column(register, user):
    registration = register(user, "plain")
    registration.description = "saved through the model"
    registration.save()
    assert SEARCH_COLUMN not in str(Registration.objects.all().query)
    assert found("saved") == ["plain"]


def test_a_selective_term_uses_the_gin_index(catalog):
    with connection.cursor() as cursor:
        # A three-row table is cheapest to read whole, or along any btree index; forbid
        # both (for this test's transaction) to see whether the GIN index can answer.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    plan = search_registrations(Registration.objects.order_by(), "podcasts").explain()
    assert SEARCH_INDEX_NAME in plan
    assert "to_tsvector" not in plan
