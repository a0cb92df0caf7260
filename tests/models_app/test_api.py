"""The registry API as anonymous callers, users, owners and moderators see it."""

import datetime

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection

from fees_app.services import account_for
from models_app.models import Registration, StatusChange
from models_app.selectors import usage_stats
from registry_site.services import parameter_set
from tests.models_app.conftest import HASH

Status = Registration.Status

BODY = {"name": "resnet.v2", "version": "1.0.0", "hash": HASH, "size_bytes": 1024,
        "parameter_count": 25_000_000, "category": "ComputerVision", "tags": ["vision"],
        "input_shape": [1, 3, 224, 224], "output_shape": [1, 1000]}


def names(response) -> list[tuple[str, str]]:
    return [(r["name"], r["version"]) for r in response.json()["results"]]


# --- POST /api/v1/models/ ------------------------------------------------------------------

def test_register_answers_201_with_the_registration(user_client, user):
    response = user_client.post("/api/v1/models/", BODY)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["owner"] == "user"
    assert body["registration_fee"] == 2024
    assert body["input_shape"] == [1, 3, 224, 224]
    assert account_for(user).balance == 1_000_000 - 2024


def test_register_needs_login_and_scope(anon_client, client_for, user):
    assert anon_client.post("/api/v1/models/", BODY).status_code == 401
    reader = client_for(user, scopes=["read", "usage"])
    response = reader.post("/api/v1/models/", BODY)
    assert response.status_code == 403
    assert "register" in response.json()["detail"]
    assert not Registration.objects.exists()


def test_register_field_errors_are_per_field(user_client):
    response = user_client.post("/api/v1/models/", {**BODY, "name": "Bad Name",
                                                    "source_url": "ftp://x", "tags": ["a" * 51]})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"name", "source_url", "tags"}
    typed = user_client.post("/api/v1/models/", {**BODY, "size_bytes": "big"})
    assert typed.status_code == 400
    assert list(typed.json()["fields"]) == ["size_bytes"]
    missing = user_client.post("/api/v1/models/", {"name": "abc"})
    assert set(missing.json()["fields"]) == {"version", "hash", "size_bytes", "parameter_count"}


def test_register_without_funds_is_402_and_changes_nothing(client_for, make_user):
    poor = make_user("poor", balance=100)
    response = client_for(poor).post("/api/v1/models/", BODY)
    assert response.status_code == 402
    body = response.json()
    assert (body["code"], body["needed"], body["balance"]) == ("insufficient_funds", 2024, 100)
    assert not Registration.objects.exists()
    assert account_for(poor).balance == 100


def test_register_while_paused_is_503(user_client, moderator):
    parameter_set(name="registrations_paused", value=1, actor=moderator, reason="incident")
    cache.clear()
    response = user_client.post("/api/v1/models/", BODY)
    assert response.status_code == 503
    assert response.json()["code"] == "registrations_paused"


def test_register_someone_elses_name_is_403_and_duplicate_409(user_client, client_for,
                                                             other_user):
    assert user_client.post("/api/v1/models/", BODY).status_code == 201
    other = client_for(other_user).post("/api/v1/models/", {**BODY, "version": "2.0.0"})
    assert other.status_code == 403
    assert other.json()["code"] == "not_owner"
    assert account_for(other_user).balance == 1_000_000
    again = user_client.post("/api/v1/models/", BODY)
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate"


# --- GET /api/v1/models/ -------------------------------------------------------------------

@pytest.fixture
def catalog(register, move, user, other_user):
    """user: a approved, b pending; other_user: c approved, d pending."""
    move(register(user, "model-a"), Status.APPROVED)
    register(user, "model-b")
    move(register(other_user, "model-c"), Status.APPROVED)
    register(other_user, "model-d")


def test_anonymous_lists_approved_only(anon_client, catalog):
    response = anon_client.get("/api/v1/models/?ordering=name")
    assert response.status_code == 200
    assert names(response) == [("model-a", "1.0.0"), ("model-c", "1.0.0")]
    assert set(response.json()) == {"next", "previous", "results"}


def test_owner_also_lists_own_pending(user_client, catalog):
    response = user_client.get("/api/v1/models/?ordering=name")
    assert [n for n, _ in names(response)] == ["model-a", "model-b", "model-c"]


def test_moderator_lists_everything(moderator_client, catalog):
    response = moderator_client.get("/api/v1/models/?ordering=name")
    assert [n for n, _ in names(response)] == ["model-a", "model-b", "model-c", "model-d"]


def test_list_pages_without_counting(anon_client, catalog):
    # The list's links page by cursor (issue 9); ?page= still answers an offset page.
    first = anon_client.get("/api/v1/models/?ordering=name&page_size=1").json()
    assert [r["name"] for r in first["results"]] == ["model-a"]
    assert first["previous"] is None and "cursor=" in first["next"]
    second = anon_client.get(first["next"]).json()
    assert [r["name"] for r in second["results"]] == ["model-c"]
    assert second["next"] is None
    assert [r["name"] for r in anon_client.get(second["previous"]).json()["results"]] == \
        ["model-a"]
    by_page = anon_client.get("/api/v1/models/?ordering=name&page_size=1&page=2").json()
    assert [r["name"] for r in by_page["results"]] == ["model-c"]
    assert by_page["next"] is None and "cursor=" in by_page["previous"]


def test_list_rejects_bad_filters(anon_client):
    response = anon_client.get("/api/v1/models/?size_min=big&ordering=random")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"size_min", "ordering"}


def test_list_query_count_is_fixed(anon_client, client_for, user, register, move,
                                   django_assert_num_queries):
    api = client_for(user)
    for i in range(3):
        move(register(user, f"model-{i}"), Status.APPROVED)
    api.get("/api/v1/models/")  # first use stamps the token's last_used_at
    with django_assert_num_queries(1):
        assert len(anon_client.get("/api/v1/models/").json()["results"]) == 3
    with django_assert_num_queries(2):  # token (with the moderator check), page
        assert len(api.get("/api/v1/models/?search=model&ordering=-executions")
                   .json()["results"]) == 3
    for i in range(3, 30):
        move(register(user, f"model-{i}"), Status.APPROVED)
    with django_assert_num_queries(1):
        assert len(anon_client.get("/api/v1/models/").json()["results"]) == 25
    with django_assert_num_queries(2):
        assert len(api.get("/api/v1/models/?search=model&ordering=-executions")
                   .json()["results"]) == 25


# --- GET /api/v1/models/{name}/ ------------------------------------------------------------

@pytest.fixture
def three_versions(register, move, user):
    with time_machine.travel("2026-01-01T00:00:00Z", tick=True):
        one = move(register(user, "llama.cpp", "1.0"), Status.APPROVED)
    with time_machine.travel("2026-02-01T00:00:00Z", tick=True):
        two = move(register(user, "llama.cpp", "2.0"), Status.APPROVED)
    with time_machine.travel("2026-03-01T00:00:00Z", tick=True):
        three = register(user, "llama.cpp", "3.0-rc1")
    return one, two, three


def test_detail_shows_newest_visible_version_and_versions(anon_client, user_client,
                                                          moderator_client, three_versions):
    anon = anon_client.get("/api/v1/models/llama.cpp/").json()
    assert anon["version"] == "2.0"
    assert [v["version"] for v in anon["versions"]] == ["2.0", "1.0"]
    owner = user_client.get("/api/v1/models/llama.cpp/").json()
    assert owner["version"] == "3.0-rc1"
    assert owner["status"] == "pending"
    assert [v["version"] for v in owner["versions"]] == ["3.0-rc1", "2.0", "1.0"]
    mod = moderator_client.get("/api/v1/models/llama.cpp/?version=1.0").json()
    assert mod["version"] == "1.0"
    assert len(mod["versions"]) == 3


def test_detail_hides_what_the_caller_may_not_see(anon_client, client_for, other_user,
                                                  register, user, three_versions):
    assert anon_client.get("/api/v1/models/llama.cpp/?version=3.0-rc1").status_code == 404
    register(user, "secret-model")
    assert anon_client.get("/api/v1/models/secret-model/").status_code == 404
    assert client_for(other_user).get("/api/v1/models/secret-model/").status_code == 404
    assert anon_client.get("/api/v1/models/no-such-model/").status_code == 404
    assert anon_client.get("/api/v1/models/Upper/").status_code == 404


def test_detail_query_count_is_fixed(anon_client, three_versions, register, move, user,
                                     django_assert_num_queries):
    with django_assert_num_queries(1):
        anon_client.get("/api/v1/models/llama.cpp/")
    for i in range(10):
        move(register(user, "llama.cpp", f"4.{i}", size_bytes=1024), Status.APPROVED)
    with django_assert_num_queries(1):
        body = anon_client.get("/api/v1/models/llama.cpp/").json()
    # The detail embeds the ten newest versions and links to the rest without counting them.
    assert [v["version"] for v in body["versions"]] == [f"4.{i}" for i in range(9, -1, -1)]
    assert body["versions_next"] == \
        "http://testserver/api/v1/models/llama.cpp/versions/?page=2&page_size=10"
    with django_assert_num_queries(1):
        rest = anon_client.get(body["versions_next"]).json()
    assert [v["version"] for v in rest["results"]] == ["2.0", "1.0"]
    assert rest["next"] is None
    with django_assert_num_queries(2):  # an older version than the embedded ones
        older = anon_client.get("/api/v1/models/llama.cpp/?version=1.0").json()
    assert (older["version"], len(older["versions"])) == ("1.0", 10)


def test_versions_pages_through_what_the_caller_may_see(anon_client, user_client,
                                                        three_versions):
    assert anon_client.get("/api/v1/models/llama.cpp/").json()["versions_next"] is None
    page = anon_client.get("/api/v1/models/llama.cpp/versions/?page_size=1").json()
    assert [v["version"] for v in page["results"]] == ["2.0"]
    assert page["next"].endswith("/api/v1/models/llama.cpp/versions/?page=2&page_size=1")
    assert [v["version"] for v in anon_client.get(page["next"]).json()["results"]] == ["1.0"]
    owner = user_client.get("/api/v1/models/llama.cpp/versions/").json()
    assert [v["version"] for v in owner["results"]] == ["3.0-rc1", "2.0", "1.0"]
    assert anon_client.get("/api/v1/models/llama.cpp/versions/?page=9").json()["results"] == []
    missing = anon_client.get("/api/v1/models/no-such-model/versions/")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert anon_client.get("/api/v1/models/llama.cpp/?version=nope").status_code == 404
    assert anon_client.get("/api/v1/models/llama.cpp/?version=3.0-rc1").status_code == 404


# --- POST /api/v1/models/{name}/status/ ----------------------------------------------------

def test_status_as_anonymous_and_other_user(anon_client, client_for, other_user, approved):
    body = {"version": "1.0.0", "status": "deprecated", "reason": "x"}
    assert anon_client.post("/api/v1/models/bert-base/status/", body).status_code == 401
    assert client_for(other_user).post("/api/v1/models/bert-base/status/",
                                       body).status_code == 403
    approved.refresh_from_db()
    assert approved.status == Status.APPROVED


def test_owner_deprecates_with_register_scope(client_for, user, approved):
    owner = client_for(user, scopes=["register"])
    response = owner.post("/api/v1/models/bert-base/status/",
                          {"version": "1.0.0", "status": "deprecated"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "deprecated"
    change = StatusChange.objects.filter(registration=approved).first()
    assert (change.actor, change.source) == (user, "api")


def test_owner_may_not_approve_or_suspend(client_for, user, register, approved):
    owner = client_for(user)
    response = owner.post("/api/v1/models/bert-base/status/",
                          {"version": "1.0.0", "status": "suspended", "reason": "x"})
    assert response.status_code == 403
    pending = register(user, "pending-one")
    response = owner.post("/api/v1/models/pending-one/status/",
                          {"version": "1.0.0", "status": "approved", "reason": "x"})
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == Status.PENDING


def test_moderator_moves_with_moderate_scope(client_for, moderator, register, user):
    registration = register(user)
    without = client_for(moderator, scopes=["read", "register"])
    body = {"version": "1.0.0", "status": "approved", "reason": "looks good"}
    response = without.post("/api/v1/models/bert-base/status/", body)
    assert response.status_code == 403
    assert "moderate" in response.json()["detail"]
    registration.refresh_from_db()
    assert registration.status == Status.PENDING
    response = client_for(moderator, scopes=["moderate"]).post(
        "/api/v1/models/bert-base/status/", body)
    assert response.status_code == 200
    registration.refresh_from_db()
    assert registration.status == Status.APPROVED


def test_status_refusals(moderator_client, register, user):
    registration = register(user)
    no_reason = moderator_client.post("/api/v1/models/bert-base/status/",
                                      {"version": "1.0.0", "status": "approved"})
    assert no_reason.status_code == 400
    assert list(no_reason.json()["fields"]) == ["reason"]
    bad = moderator_client.post("/api/v1/models/bert-base/status/",
                                {"version": "1.0.0", "status": "suspended", "reason": "x"})
    assert bad.status_code == 409
    assert (bad.json()["from_status"], bad.json()["to_status"]) == ("pending", "suspended")
    unknown = moderator_client.post("/api/v1/models/bert-base/status/",
                                    {"version": "9.9", "status": "approved", "reason": "x"})
    assert unknown.status_code == 404
    invalid = moderator_client.post("/api/v1/models/bert-base/status/",
                                    {"version": "1.0.0", "status": "gone", "reason": "x"})
    assert invalid.status_code == 400
    registration.refresh_from_db()
    assert registration.status == Status.PENDING


def test_moderator_may_not_approve_own_model_by_api(moderator_client, register, moderator):
    register(moderator, "mods-model")
    response = moderator_client.post("/api/v1/models/mods-model/status/",
                                     {"version": "1.0.0", "status": "approved", "reason": "x"})
    assert response.status_code == 403
    assert response.json()["code"] == "self_approval"


# --- POST /api/v1/models/{name}/usage/ -----------------------------------------------------

def test_usage_records_and_charges(client_for, other_user, approved):
    api = client_for(other_user, scopes=["usage"])
    response = api.post("/api/v1/models/bert-base/usage/", {"success": True, "duration_us": 40})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["version"], body["fee"], body["balance"]) == ("1.0.0", 100, 999_900)
    assert usage_stats(approved.pk).total_executions == 1


def test_usage_needs_login_scope_and_valid_input(anon_client, client_for, other_user,
                                                 approved):
    body = {"success": True, "duration_us": 40}
    assert anon_client.post("/api/v1/models/bert-base/usage/", body).status_code == 401
    assert client_for(other_user, scopes=["read"]).post(
        "/api/v1/models/bert-base/usage/", body).status_code == 403
    api = client_for(other_user)
    for body, field in [({"success": "maybe", "duration_us": 5}, "success"),
                        ({"success": True, "duration_us": -5}, "duration_us"),
                        ({"success": True}, "duration_us")]:
        bad = api.post("/api/v1/models/bert-base/usage/", body)
        assert bad.status_code == 400
        assert list(bad.json()["fields"]) == [field]
    assert usage_stats(approved.pk).total_executions == 0


def test_usage_defaults_to_newest_approved(client_for, other_user, three_versions):
    api = client_for(other_user)
    response = api.post("/api/v1/models/llama.cpp/usage/", {"success": True, "duration_us": 1})
    assert response.json()["version"] == "2.0"
    older = api.post("/api/v1/models/llama.cpp/usage/",
                     {"version": "1.0", "success": False, "duration_us": 1})
    assert older.json()["version"] == "1.0"


def test_usage_of_unapproved_is_409_or_404(client_for, user, other_user, register,
                                           three_versions):
    owner = client_for(user)
    response = owner.post("/api/v1/models/llama.cpp/usage/",
                          {"version": "3.0-rc1", "success": True, "duration_us": 1})
    assert response.status_code == 409
    assert response.json()["code"] == "not_approved"
    register(user, "only-pending")
    assert owner.post("/api/v1/models/only-pending/usage/",
                      {"success": True, "duration_us": 1}).status_code == 409
    # Someone who cannot see the pending version gets 404, not a hint that it exists.
    assert client_for(other_user).post(
        "/api/v1/models/only-pending/usage/", {"success": True, "duration_us": 1}
    ).status_code == 404
    assert account_for(other_user).balance == 1_000_000


def test_usage_without_funds_is_402(client_for, make_user, approved):
    broke = make_user("broke", balance=50)
    response = client_for(broke).post("/api/v1/models/bert-base/usage/",
                                      {"success": True, "duration_us": 1})
    assert response.status_code == 402
    assert (response.json()["needed"], response.json()["balance"]) == (100, 50)
    assert usage_stats(approved.pk).total_executions == 0


# --- GET stats and history -----------------------------------------------------------------

def test_model_stats_totals_and_per_version(anon_client, client_for, user, other_user,
                                            three_versions):
    for api, version, ok, duration in [(client_for(user), "1.0", True, 100),
                                       (client_for(other_user), "2.0", False, 300),
                                       (client_for(other_user), "1.0", True, 200)]:
        api.post("/api/v1/models/llama.cpp/usage/",
                 {"version": version, "success": ok, "duration_us": duration})
    totals = anon_client.get("/api/v1/models/llama.cpp/stats/").json()
    assert totals["version"] is None
    assert {k: totals[k] for k in ["total_executions", "successful_executions",
                                   "failed_executions", "total_fees_collected",
                                   "avg_execution_time_us", "unique_users"]} == {
        "total_executions": 3, "successful_executions": 2, "failed_executions": 1,
        "total_fees_collected": 300, "avg_execution_time_us": 200, "unique_users": 2}
    assert totals["last_execution"] is not None
    one = anon_client.get("/api/v1/models/llama.cpp/stats/?version=1.0").json()
    assert (one["version"], one["total_executions"], one["unique_users"]) == ("1.0", 2, 2)
    assert anon_client.get("/api/v1/models/llama.cpp/stats/?version=3.0-rc1").status_code == 404
    assert anon_client.get("/api/v1/models/nothing/stats/").status_code == 404


def test_history_lists_visible_changes_newest_first(anon_client, user_client, three_versions):
    rows = anon_client.get("/api/v1/models/llama.cpp/history/").json()["results"]
    assert [(r["version"], r["to_status"]) for r in rows] == [
        ("2.0", "approved"), ("2.0", "pending"), ("1.0", "approved"), ("1.0", "pending")]
    assert rows[0]["actor"] == "mod" and rows[0]["reason"] == "checked"
    owner_rows = user_client.get("/api/v1/models/llama.cpp/history/").json()["results"]
    assert owner_rows[0]["version"] == "3.0-rc1"


def test_history_answers_which_versions_were_approved_at(anon_client, moderator, three_versions):
    one, two, _ = three_versions
    with time_machine.travel("2026-04-01T00:00:00Z", tick=True):
        from models_app.models import Source
        from models_app.services import registration_transition
        registration_transition(registration=one, to_status=Status.SUSPENDED, actor=moderator,
                                source=Source.ADMIN, reason="incident")

    def approved_at(when):
        response = anon_client.get(f"/api/v1/models/llama.cpp/history/?approved_at={when}")
        assert response.status_code == 200, response.content
        return [v["version"] for v in response.json()["versions"]]

    assert approved_at("2025-12-31T00:00:00Z") == []
    assert approved_at("2026-01-15T00:00:00Z") == ["1.0"]
    assert approved_at("2026-03-15") == ["2.0", "1.0"]
    assert approved_at("2026-04-02T00:00:00%2B00:00") == ["2.0"]
    bad = anon_client.get("/api/v1/models/llama.cpp/history/?approved_at=yesterday")
    assert bad.status_code == 400
    assert list(bad.json()["fields"]) == ["approved_at"]
    assert anon_client.get(
        "/api/v1/models/nothing/history/?approved_at=2026-01-01").status_code == 404


def test_registry_stats(anon_client, catalog, client_for, other_user):
    client_for(other_user).post("/api/v1/models/model-a/usage/",
                                {"success": True, "duration_us": 5})
    cache.clear()
    body = anon_client.get("/api/v1/stats/").json()
    assert body["total_models"] == 4
    assert (body["active_models"], body["pending_models"]) == (2, 2)
    assert body["total_executions"] == 1
    assert body["total_fees_collected"] == 4 * 2024 + 100
    assert body["total_registrants"] == 2
    assert body["avg_model_size"] == 1024
    assert body["most_popular_category"] == "NLP"
    assert body["by_status"] == {"pending": 2, "approved": 2, "rejected": 0, "suspended": 0,
                                 "deprecated": 0}
    assert body["by_category"]["NLP"] == 4 and body["by_category"]["Other"] == 0


def test_registry_stats_on_an_empty_registry(anon_client, db):
    body = anon_client.get("/api/v1/stats/").json()
    assert (body["total_models"], body["avg_model_size"], body["most_popular_category"]) == (
        0, 0, None)


# --- Names that look like routes -----------------------------------------------------------

@pytest.mark.parametrize("name", ["search", "stats", "history", "status", "usage", "models",
                                  "v1.2.3", "a.b-c_d"])
def test_route_word_names(name, client_for, user, other_user, register, move, anon_client):
    move(register(user, name), Status.APPROVED)
    assert anon_client.get(f"/api/v1/models/{name}/").json()["name"] == name
    usage = client_for(other_user).post(f"/api/v1/models/{name}/usage/",
                                        {"success": True, "duration_us": 1})
    assert usage.status_code == 201
    stats = anon_client.get(f"/api/v1/models/{name}/stats/").json()
    assert (stats["name"], stats["total_executions"]) == (name, 1)
    history = anon_client.get(f"/api/v1/models/{name}/history/").json()["results"]
    assert history[0]["name"] == name
    status = client_for(user).post(f"/api/v1/models/{name}/status/",
                                   {"version": "1.0.0", "status": "deprecated"})
    assert status.status_code == 200
    assert anon_client.get(f"/api/v1/models/?search={name}").status_code == 200


def test_schema_documents_the_registry(anon_client, db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    for path in ["/api/v1/models/", "/api/v1/models/{name}/", "/api/v1/models/{name}/status/",
                 "/api/v1/models/{name}/usage/", "/api/v1/models/{name}/stats/",
                 "/api/v1/models/{name}/history/", "/api/v1/stats/"]:
        assert path in paths, path
    params = {p["name"] for p in paths["/api/v1/models/"]["get"]["parameters"]}
    assert {"search", "category", "status", "owner", "tag", "license", "size_min", "size_max",
            "parameters_min", "parameters_max", "registered_since", "ordering",
            "page"} <= params
    assert datetime  # imported for clarity of time values above
def test_all_field_errors_reported_together(user_client):
    response = user_client.post("/api/v1/models/", {
        "name": "Bad Name", "version": "", "hash": "zz", "size_bytes": -1,
        "parameter_count": 1, "source_url": "ftp://x", "tags": ["a" * 51],
    }, format="json")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert {"name", "version", "hash", "size_bytes", "source_url", "tags"} <= set(fields)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_dates_outside_utc_range_are_field_errors(anon_client, db, value):
    response = anon_client.get("/api/v1/models/", {"registered_since": value})
    assert response.status_code == 400
    assert "registered_since" in response.json()["fields"]
    page = anon_client.get("/", {"registered_since": value})
    assert page.status_code == 200


@pytest.mark.parametrize("alias,canonical", [
    ("newest", "-registered_at"), ("oldest", "registered_at"),
    ("most_executions", "-executions"), ("size_bytes", "size"), ("-size_bytes", "-size"),
    ("total_executions", "executions"), ("-total_executions", "-executions"),
])
def test_ordering_aliases(moderator_client, catalog, alias, canonical):
    by_alias = moderator_client.get("/api/v1/models/", {"ordering": alias})
    assert by_alias.status_code == 200
    assert names(by_alias) == names(moderator_client.get("/api/v1/models/",
                                                         {"ordering": canonical}))
    assert moderator_client.get("/api/v1/models/", {"ordering": "bogus"}).status_code == 400


def test_approved_at_does_not_reveal_a_hidden_model(anon_client, register, other_user):
    register(other_user, "never-public")
    response = anon_client.get("/api/v1/models/never-public/history/",
                               {"approved_at": "2099-01-01T00:00:00Z"})
    assert response.status_code == 404


# --- queries per write ----------------------------------------------------------------------
# The service's transaction is a savepoint inside the test's (SAVEPOINT and RELEASE count);
# on commit, not counted here: the usage fold (one statement) and the audit sealer's work.

def test_usage_query_count(client_for, other_user, approved, django_assert_num_queries):
    api = client_for(other_user, scopes=["usage"])
    url = "/api/v1/models/bert-base/usage/"
    api.post(url, {"success": True, "duration_us": 1}, format="json")  # stamps last_used_at
    # token (with the moderator check), version lookup; share lock with the exact counters,
    # debit (which checks the schedule that the first record read is still active), ledger
    # row, first-use upsert, usage delta, audit event; savepoint and release. PostgreSQL
    # chooses and locks the version in one statement, inserts the ledger row with the debit
    # and the delta with the upsert.
    with django_assert_num_queries(7 if connection.vendor == "postgresql" else 10):
        assert api.post(url, {"success": True, "duration_us": 1},
                        format="json").status_code == 201


def test_register_query_count(user_client, django_assert_num_queries):
    body = {"name": "counted", "hash": "a" * 64, "size_bytes": 1024, "parameter_count": 1}
    user_client.post("/api/v1/models/", {**body, "version": "1.0"}, format="json")
    # token; name upsert, name lock, newest version, debit (checking the schedule the first
    # registration read), ledger row (with the debit on PostgreSQL), registration, history
    # row (with the registration on PostgreSQL), usage row, audit event; savepoint and release
    with django_assert_num_queries(10 if connection.vendor == "postgresql" else 12):
        assert user_client.post("/api/v1/models/", {**body, "version": "2.0"},
                                format="json").status_code == 201


@pytest.mark.parametrize("query, refused", [
    ("status=&category=", {"status", "category"}),
    ("page=", {"page"}),
    ("size_min=0.5", {"size_min"}),
    (f"size_min={2**63}", {"size_min"}),
    ("sizemin=1&ordering=name", {"sizemin"}),
    ("page_size=101", {"page_size"}),
])
def test_the_model_list_refuses_what_its_schema_refuses(anon_client, query, refused):
    response = anon_client.get(f"/api/v1/models/?{query}")
    assert response.status_code == 400, response.content
    assert set(response.json()["fields"]) == refused


def test_an_empty_text_filter_is_no_filter(anon_client, approved):
    response = anon_client.get("/api/v1/models/?search=&owner=")
    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == ["bert-base"]
    assert response.json()["results"][0]["source_url"] is None
