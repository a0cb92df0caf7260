"""The read path of issue 9: rows written out without serializers, the orjson renderer,
cursor pages of the model list and the cached anonymous model detail."""

import base64
import datetime
import json
import os

import pytest
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

from models_app.api.serializers import (
    REGISTRATION_COLUMNS,
    VERSION_COLUMNS,
    RegistrationSerializer,
    VersionSummarySerializer,
    registration_data,
    version_summary_data,
)
from models_app.models import Registration, UsageStats
from models_app.read_cache import cached_answer, store_answer
from registry_site.api.renderers import JSONRenderer

Status = Registration.Status


def test_rows_are_written_as_the_serializers_write_them(register, move, user):
    odd = register(user, "odd-model", "1.0+build.7", description="Zeilen\u2028trenner «ü»",
                   tags=["a", "ü"], input_shape=[1, 3])
    move(odd, Status.APPROVED)
    UsageStats.objects.filter(pk=odd.pk).update(total_executions=7, successful_executions=7)
    plain = register(user, "plain-model")
    UsageStats.objects.filter(pk=plain.pk).delete()
    for registration in (odd, plain):
        instance = Registration.objects.select_related("owner", "usage").get(pk=registration.pk)
        row = (Registration.objects.filter(pk=registration.pk).with_pending_executions()
               .values(*REGISTRATION_COLUMNS).get())
        assert registration_data(row) == RegistrationSerializer(instance).data
        versions = Registration.objects.filter(pk=registration.pk).values(*VERSION_COLUMNS).get()
        assert version_summary_data(versions) == VersionSummarySerializer(instance).data


@pytest.mark.parametrize("data", [
    {"text": "line\u2028and\u2029para «ü» \x00\x1f", "n": 2**63 - 1, "none": None, "t": True},
    {"when": datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC),
     "day": datetime.date(2026, 1, 2), "nested": [{"x": []}, {}]},
    {"big": 2**70, "keys": {1: "int key"}},  # orjson refuses both: DRF's renderer answers
    ["\ud800"],
])
def test_renderer_writes_drfs_bytes(data):
    try:
        expected = DRFJSONRenderer().render(data)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            JSONRenderer().render(data)
        return
    assert JSONRenderer().render(data) == expected


# --- cursor pages ---------------------------------------------------------------------------

@pytest.fixture
def approved(register, move, user):
    def make(*names):
        return [move(register(user, name), Status.APPROVED) for name in names]
    return make


def walk(client, url):
    seen, pages = [], 0
    while url:
        body = client.get(url).json()
        seen += [(r["name"], r["version"]) for r in body["results"]]
        url, pages = body["next"], pages + 1
    return seen, pages


@pytest.mark.parametrize("ordering", ["name", "-name", "-registered_at", "registered_at",
                                      "size", "-size", "executions", "-executions"])
def test_cursor_pages_cover_every_row_once_in_order(anon_client, approved, ordering):
    approved(*(f"model-{i:02d}" for i in range(7)))
    everything = anon_client.get(f"/api/v1/models/?ordering={ordering}&page_size=100").json()
    expected = [(r["name"], r["version"]) for r in everything["results"]]
    seen, pages = walk(anon_client, f"/api/v1/models/?ordering={ordering}&page_size=2")
    assert (seen, pages) == (expected, 4)


def test_cursor_pages_neither_repeat_nor_skip_across_inserts(anon_client, approved):
    approved("model-b", "model-d", "model-f", "model-h")
    first = anon_client.get("/api/v1/models/?ordering=name&page_size=2").json()
    assert [r["name"] for r in first["results"]] == ["model-b", "model-d"]
    # One row sorts before the page already read (an offset would repeat model-d), one after.
    approved("model-a", "model-e")
    seen, _ = walk(anon_client, first["next"])
    assert [name for name, _ in seen] == ["model-e", "model-f", "model-h"]


def test_previous_links_walk_back(anon_client, approved):
    approved(*(f"model-{i}" for i in range(5)))
    first = anon_client.get("/api/v1/models/?ordering=-name&page_size=2").json()
    assert first["previous"] is None
    second = anon_client.get(first["next"]).json()
    third = anon_client.get(second["next"]).json()
    assert third["next"] is None
    back = anon_client.get(third["previous"]).json()
    assert back["results"] == second["results"]
    assert anon_client.get(back["previous"]).json()["results"] == first["results"]
    assert anon_client.get(back["previous"]).json()["previous"] is None


def cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("query", [
    "cursor=not-a-cursor",
    "cursor=" + cursor([["name", "version"], "n", ["a"]]),
    "cursor=" + cursor([["name", "version"], "x", ["a", "b"]]),
    "ordering=size&cursor=" + cursor([["name", "version"], "n", ["a", "b"]]),
    "ordering=-registered_at&cursor=" + cursor([["-registered_at", "-id"], "n", ["soon", 1]]),
    "ordering=-registered_at&cursor=" + cursor([["-registered_at", "-id"], "n",
                                                ["2026-01-01T00:00:00", 1]]),
    "ordering=size&cursor=" + cursor([["size_bytes", "id"], "n", [[1], 1]]),
    "search=model&cursor=" + cursor([["-rank", "name", "version"], "n", [1, "a", "b"]]),
])
def test_bad_cursor_is_400_in_the_error_shape(anon_client, approved, query):
    approved("model-a")
    response = anon_client.get(f"/api/v1/models/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], list(body["fields"])) == ("invalid", ["cursor"])


# --- the cached anonymous detail ----------------------------------------------------------

def test_anonymous_detail_is_cached_until_a_write_commits(
        anon_client, approved, moderator_client, django_assert_num_queries,
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        approved("cached-model")
    first = anon_client.get("/api/v1/models/cached-model/")
    with django_assert_num_queries(0):
        again = anon_client.get("/api/v1/models/cached-model/")
    assert (again.content, again["Content-Type"]) == (first.content, "application/json")
    assert first.json()["status"] == "approved"
    with django_capture_on_commit_callbacks(execute=True):
        response = moderator_client.post("/api/v1/models/cached-model/status/",
                                         {"version": "1.0.0", "status": "suspended",
                                          "reason": "reported"})
    assert response.status_code == 200, response.content
    assert anon_client.get("/api/v1/models/cached-model/").status_code == 404


def test_a_transaction_neither_reads_nor_stores_answers_of_what_it_changed(
        anon_client, approved, register, move, user, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True):
        approved("rolled-model")
    assert anon_client.get("/api/v1/models/rolled-model/").json()["version"] == "1.0.0"

    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack), transaction.atomic():
        move(register(user, "rolled-model", "2.0.0"), Status.APPROVED)
        # Its own change, not the answer cached before it...
        assert anon_client.get("/api/v1/models/rolled-model/").json()["version"] == "2.0.0"
        raise RolledBack
    # ... and the answer it made from a version no one else saw was not stored.
    assert anon_client.get("/api/v1/models/rolled-model/").json()["version"] == "1.0.0"


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_a_write_moves_every_generation_on_in_one_round_trip_after_commit(
        approved, make_user, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    from models_app.services import usage_record
    from tests.redis_helpers import commands_sent

    with django_capture_on_commit_callbacks(execute=True):
        (model,) = approved("counted-model")
    caller = make_user("counter", balance=1000)
    stores = [cache, cache.strict]
    with django_capture_on_commit_callbacks() as at_commit:
        assert commands_sent(stores, lambda: usage_record(
            registration=model, user=caller, success=True, duration_us=5)) == []
    commands = commands_sent(stores, lambda: [callback() for callback in at_commit])
    # The model's generation and the statistics' together.
    assert commands in (["EVALSHA"], ["EVALSHA", "EVAL"])


def test_an_answer_read_before_a_commit_is_never_served_after_it(
        anon_client, approved, register, user, django_capture_on_commit_callbacks):
    approved("racy-model")
    variant = "http://testserver|None"
    # A slow reader read the generation, then the database, before a new version committed...
    _, generation = cached_answer("racy-model", variant)
    stale = anon_client.get("/api/v1/models/racy-model/").content
    with django_capture_on_commit_callbacks(execute=True):
        register(user, "racy-model", "2.0.0")
    # ... and stores its answer only afterwards: it is stored under the old generation.
    store_answer("racy-model", variant, generation, b'{"stale": true}')
    assert anon_client.get("/api/v1/models/racy-model/").content == stale


def test_a_bump_lost_while_the_cache_was_down_is_made_when_it_answers_again(
        anon_client, approved, moderator_client, monkeypatch, django_capture_on_commit_callbacks):
    import redis
    from django.core.cache import cache

    from registry_site import generations

    monkeypatch.setattr(generations, "_lost", set())
    with django_capture_on_commit_callbacks(execute=True):
        approved("outage-model")
    assert anon_client.get("/api/v1/models/outage-model/").status_code == 200  # cached
    store = getattr(cache, "strict", cache)

    def down(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Redis is down")

    with monkeypatch.context() as patched:
        patched.setattr(store, "incr", down)
        patched.setattr(store, "add", down)
        patched.setattr(store, "bump_many", down, raising=False)
        with django_capture_on_commit_callbacks(execute=True):
            response = moderator_client.post("/api/v1/models/outage-model/status/",
                                             {"version": "1.0.0", "status": "suspended",
                                              "reason": "reported"})
        assert response.status_code == 200, response.content  # the write does not fail
    assert generations._lost >= {"model-detail:gen:outage-model", "model-detail:gen:*catalog"}
    # Back up: the first read moves the generation on and never serves the old answer.
    assert anon_client.get("/api/v1/models/outage-model/").status_code == 404
    assert generations._lost == set()


def test_owners_are_never_served_the_anonymous_answer(anon_client, user_client,
                                                     approved, register, user):
    approved("mixed-model")
    register(user, "mixed-model", "2.0.0")  # pending: the owner sees it, anonymous does not
    assert anon_client.get("/api/v1/models/mixed-model/").json()["version"] == "1.0.0"
    assert user_client.get("/api/v1/models/mixed-model/").json()["version"] == "2.0.0"
    assert anon_client.get("/api/v1/models/mixed-model/").json()["version"] == "1.0.0"
    assert user_client.get("/api/v1/models/mixed-model/").json()["version"] == "2.0.0"


def test_other_signed_in_callers_share_the_anonymous_answer(
        anon_client, client_for, other_user, approved, register, user,
        django_assert_num_queries, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        approved("shared-model")
        register(user, "shared-model", "2.0.0")  # pending: only its owner sees it
    other = client_for(other_user)
    other.get("/api/v1/models/")  # first use stamps the token's last_used_at
    first = other.get("/api/v1/models/shared-model/")  # reads the members' view, stores
    assert first.json()["version"] == "1.0.0"
    with django_assert_num_queries(1):  # the token; the answer is the anonymous one
        again = other.get("/api/v1/models/shared-model/")
    with django_assert_num_queries(0):
        anonymous = anon_client.get("/api/v1/models/shared-model/")
    assert again.content == anonymous.content == first.content
    assert again["Content-Type"] == "application/json"


def test_a_usage_record_keeps_the_members_view(
        client_for, other_user, approved, make_user, monkeypatch,
        django_capture_on_commit_callbacks):
    from models_app import read_cache
    from models_app.services import usage_record

    with django_capture_on_commit_callbacks(execute=True):
        (model,) = approved("busy-model")
    other = client_for(other_user)
    assert other.get("/api/v1/models/busy-model/").json()["total_executions"] == 0
    views, real = [], read_cache.members_view
    monkeypatch.setattr(read_cache, "members_view", lambda name: views.append(name) or real(name))
    with django_capture_on_commit_callbacks(execute=True):
        usage_record(registration=model, user=make_user("runner", balance=1000), success=True,
                     duration_us=5)
    # The answer is rendered again with the new count; who may share it has not changed.
    assert other.get("/api/v1/models/busy-model/").json()["total_executions"] == 1
    assert views == []


def test_the_members_view_follows_a_first_registration(
        client_for, other_user, register, django_capture_on_commit_callbacks):
    other = client_for(other_user)
    assert other.get("/api/v1/models/claimed-later/").status_code == 404  # nobody's yet
    with django_capture_on_commit_callbacks(execute=True):
        register(other_user, "claimed-later")  # pending: only its owner sees it
    assert other.get("/api/v1/models/claimed-later/").json()["status"] == "pending"


def test_a_signed_in_answer_is_stored_as_the_anonymous_one(
        anon_client, client_for, other_user, approved, django_assert_num_queries,
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        approved("first-by-member")
    client_for(other_user).get("/api/v1/models/first-by-member/")
    with django_assert_num_queries(0):
        assert anon_client.get("/api/v1/models/first-by-member/").json()["status"] == "approved"


def test_moderators_are_never_served_the_anonymous_answer(
        anon_client, moderator_client, approved, register, user,
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        approved("moderated-model")
        register(user, "moderated-model", "2.0.0")
    assert anon_client.get("/api/v1/models/moderated-model/").json()["version"] == "1.0.0"
    assert moderator_client.get("/api/v1/models/moderated-model/").json()["version"] == "2.0.0"


# --- the cached anonymous list pages ------------------------------------------------------

LIST = "/api/v1/models/?ordering=name&page_size=10"


def test_an_anonymous_list_page_is_cached_until_a_catalog_change_commits(
        anon_client, approved, register, user, moderator_client, django_assert_num_queries,
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        approved("listed-a")
    page = anon_client.get(LIST)
    with django_assert_num_queries(0):
        again = anon_client.get(LIST)
    assert (again.content, again["Content-Type"]) == (page.content, "application/json")
    with django_capture_on_commit_callbacks(execute=True):
        approved("listed-b")  # a new approved version: on the page at once
    assert [r["name"] for r in anon_client.get(LIST).json()["results"]] == [
        "listed-a", "listed-b"]
    with django_capture_on_commit_callbacks(execute=True):
        moderator_client.post("/api/v1/models/listed-a/status/", {
            "version": "1.0.0", "status": "suspended", "reason": "reported"})
    assert [r["name"] for r in anon_client.get(LIST).json()["results"]] == ["listed-b"]
    # Another query string is another answer.
    assert anon_client.get(LIST + "&search=listed-b").json()["results"][0]["name"] == (
        "listed-b")


def test_usage_moves_the_models_answers_but_not_the_catalogs(
        anon_client, approved, make_user, django_capture_on_commit_callbacks):
    from models_app import read_cache
    from models_app.services import usage_record

    (model,) = approved("used-model")
    anon_client.get(LIST)
    anon_client.get("/api/v1/models/used-model/")
    _, catalog_before = read_cache.cached_answer(read_cache.CATALOG, "probe")
    caller = make_user("caller", balance=1000)
    with django_capture_on_commit_callbacks(execute=True):
        usage_record(registration=model, user=caller, success=True, duration_us=5)
    _, catalog_after = read_cache.cached_answer(read_cache.CATALOG, "probe")
    assert catalog_after == catalog_before  # list pages stay cached (counts lag <= 2 s)
    assert anon_client.get("/api/v1/models/used-model/").json()["total_executions"] == 1


def test_signed_in_callers_never_get_the_anonymous_list(anon_client, user_client, approved,
                                                        register, user):
    approved("shared-list")
    register(user, "own-pending")  # pending: only its owner lists it
    assert [r["name"] for r in anon_client.get(LIST).json()["results"]] == ["shared-list"]
    assert [r["name"] for r in user_client.get(LIST).json()["results"]] == [
        "own-pending", "shared-list"]


# --- queries per request, at two sizes ----------------------------------------------------

def test_read_query_counts_do_not_grow_with_the_registry(
        anon_client, client_for, user, make_user, approved, django_assert_num_queries,
        django_capture_on_commit_callbacks):
    api = client_for(user, scopes=["read"])
    api.get("/api/v1/models/")  # first use stamps the token's last_used_at
    member = client_for(make_user("reader"), scopes=["read"])
    member.get("/api/v1/models/")
    for size in (3, 40):
        with django_capture_on_commit_callbacks(execute=True):
            approved(*(f"size{size}-model-{i:02d}" for i in range(size)))
        with django_assert_num_queries(1):
            page = anon_client.get("/api/v1/models/?ordering=name&page_size=2").json()
        with django_assert_num_queries(1):
            assert len(anon_client.get(page["next"]).json()["results"]) >= 1
        with django_assert_num_queries(1):  # the first anonymous read of a name
            anon_client.get(f"/api/v1/models/size{size}-model-01/")
        with django_assert_num_queries(0):  # every later one, until a write on it
            anon_client.get(f"/api/v1/models/size{size}-model-01/")
        with django_assert_num_queries(3):  # token, the members' view, the owner's versions
            api.get(f"/api/v1/models/size{size}-model-01/")
        with django_assert_num_queries(2):  # token with the moderator check, versions
            api.get(f"/api/v1/models/size{size}-model-01/")
        with django_assert_num_queries(1):  # another signed-in caller: the token only
            member.get(f"/api/v1/models/size{size}-model-01/")
