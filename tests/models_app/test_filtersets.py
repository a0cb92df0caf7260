"""The one FilterSet behind the API list and the catalog, on SQLite and PostgreSQL."""

import pytest
import time_machine
from django.db import connection

from models_app.filtersets import RegistrationFilterSet
from models_app.models import Registration

Status = Registration.Status


@pytest.fixture
def models(register, move, user, other_user, approved):
    """bert-base (user, approved) plus a varied set, all approved unless noted."""
    with time_machine.travel("2026-01-01T00:00:00Z", tick=True):
        move(register(user, "whisper-tiny", category="Speech", tags=["asr", "english"],
                      description="Speech recognition for English.", license="MIT",
                      size_bytes=5_000, parameter_count=39_000_000), Status.APPROVED)
    with time_machine.travel("2026-03-01T00:00:00Z", tick=True):
        move(register(other_user, "resnet50", category="ComputerVision",
                      tags=["image-classification", "imagenet"], license="Apache-2.0",
                      description="Residual network for images.", size_bytes=90_000,
                      parameter_count=25_000_000), Status.APPROVED)
        register(other_user, "yolo-pending", category="ComputerVision", tags=["asr"])
    return Registration.objects.all()


def run(params: dict, queryset=None) -> list[str]:
    filterset = RegistrationFilterSet(params, queryset=queryset or Registration.objects.all())
    assert filterset.is_valid(), filterset.errors
    return [r.name for r in filterset.qs]


def test_no_filters_orders_newest_first(models):
    assert run({}) == ["bert-base", "yolo-pending", "resnet50", "whisper-tiny"]


@pytest.mark.parametrize(("params", "expected"), [
    ({"category": "Speech"}, ["whisper-tiny"]),
    ({"status": "pending"}, ["yolo-pending"]),
    ({"owner": "other", "ordering": "name"}, ["resnet50", "yolo-pending"]),
    ({"tag": "asr", "ordering": "name"}, ["whisper-tiny", "yolo-pending"]),
    ({"tag": "as"}, []),
    ({"license": "MIT"}, ["whisper-tiny"]),
    ({"size_min": "5000", "size_max": "90000", "ordering": "size"},
     ["whisper-tiny", "resnet50"]),
    ({"parameters_min": "30000000"}, ["bert-base", "whisper-tiny", "yolo-pending"]),
    ({"parameters_max": "30000000", "status": "approved"}, ["resnet50"]),
    ({"registered_since": "2026-02-01", "status": "approved"}, ["bert-base", "resnet50"]),
    ({"registered_since": "2026-02-15T00:00:00Z", "ordering": "registered_at"},
     ["resnet50", "yolo-pending", "bert-base"]),
    ({"ordering": "-size", "status": "approved"}, ["resnet50", "whisper-tiny", "bert-base"]),
    ({"ordering": "-name"}, ["yolo-pending", "whisper-tiny", "resnet50", "bert-base"]),
])
def test_filters(models, params, expected):
    result = run(params)
    if params.get("ordering") or len(expected) < 2:
        assert result == expected
    else:
        assert sorted(result) == sorted(expected)


@pytest.mark.parametrize(("terms", "expected"), [
    ("whisper", {"whisper-tiny"}),
    ("english", {"whisper-tiny"}),          # description / tags
    ("imagenet", {"resnet50"}),             # tags
    ("1.0.0", {"bert-base", "whisper-tiny", "resnet50", "yolo-pending"}),  # version
    ("nothing-like-this", set()),
])
def test_search(models, terms, expected):
    assert set(run({"search": terms})) == expected


def test_search_is_case_insensitive(models):
    assert run({"search": "WHISPER"}) == ["whisper-tiny"]


def test_most_executions_ordering(models, client_for, other_user):
    api = client_for(other_user)
    for name, times in [("resnet50", 3), ("whisper-tiny", 1)]:
        for _ in range(times):
            api.post(f"/api/v1/models/{name}/usage/", {"success": True, "duration_us": 1})
    assert run({"ordering": "-executions", "status": "approved"})[:2] == ["resnet50",
                                                                          "whisper-tiny"]


@pytest.mark.parametrize("params", [{"size_min": "-1"}, {"size_max": "x"},
                                    {"category": "Vision"}, {"status": "gone"},
                                    {"registered_since": "last week"}, {"ordering": "hash"}])
def test_bad_values_are_form_errors(db, params):
    filterset = RegistrationFilterSet(params, queryset=Registration.objects.all())
    assert not filterset.is_valid()
    assert set(filterset.errors) == set(params)


def test_visibility_is_applied_before_filters(models, user):
    visible = Registration.objects.visible_to(None)
    assert "yolo-pending" not in run({"category": "ComputerVision"}, visible)
    assert run({"search": "resnet50"}, Registration.objects.visible_to(user)) == ["resnet50"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_postgresql_search_ranks_and_uses_the_gin_indexes(register, move, user):
    move(register(user, "speech-a", description="speech speech speech model"), Status.APPROVED)
    move(register(user, "other-b", description="a model about speech"), Status.APPROVED)
    assert run({"search": "speech"}) == ["speech-a", "other-b"]
    assert run({"search": "speech -about"}) == ["speech-a"]  # websearch syntax

    def plan(params):
        qs = RegistrationFilterSet(params, queryset=Registration.objects.all()).qs
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")
            sql, args = qs.query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", args)
            text = "\n".join(row[0] for row in cursor.fetchall())
            cursor.execute("SET enable_seqscan = on")
        return text

    assert "reg_search_document_idx" in plan({"search": "speech"})
    assert "reg_tags_gin_idx" in plan({"tag": "asr"})
