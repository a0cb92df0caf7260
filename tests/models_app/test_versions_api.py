"""The version resource: read it (ETag, 304), edit its metadata (PATCH, If-Match, 412), its
metadata history, and Location on every 201."""

import pytest

from fees_app.services import account_for
from models_app.models import MetadataChange, Registration
from registry_site.models import AuditEvent
from tests.concurrency import run_at_once
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/bert-base/versions/1.0.0/"
VERSION_FIELDS = {"name", "version", "owner", "status", "category", "hash", "description",
                  "license", "source_url", "tags", "architecture", "input_shape",
                  "output_shape", "size_bytes", "parameter_count", "registration_fee",
                  "registered_at", "updated_at"}


def test_a_version_reads_with_validators_and_answers_304_while_unchanged(anon_client, approved):
    response = anon_client.get(URL)
    assert response.status_code == 200
    assert set(response.json()) == VERSION_FIELDS
    etag = response["ETag"]
    assert etag.startswith('"') and len(etag) == 34
    assert response["Last-Modified"].endswith(" GMT")
    cached = anon_client.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert (cached.status_code, cached.content, cached["ETag"]) == (304, b"", etag)
    assert anon_client.get(URL, HTTP_IF_NONE_MATCH='"other"').status_code == 200
    assert anon_client.get("/api/v1/models/bert-base/versions/9.9.9/").status_code == 404


def test_a_pending_version_is_read_only_by_its_owner(anon_client, client_for, user, other_user,
                                                    register):
    register(user)
    assert anon_client.get(URL).status_code == 404
    assert client_for(other_user).get(URL).status_code == 404
    assert client_for(user).get(URL).json()["status"] == "pending"


def test_the_owner_edits_metadata_for_free_with_history_and_audit(client_for, user, approved):
    api = client_for(user, scopes=["read", "register"])
    balance = account_for(user).balance
    before = api.get(URL)
    response = api.patch(URL, {"description": "Now with a card.", "tags": ["nlp", "nlp", "en"],
                               "source_url": "https://example.com/bert"}, format="json",
                         HTTP_IF_MATCH=before["ETag"])
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["description"], body["tags"], body["source_url"]) == (
        "Now with a card.", ["nlp", "en"], "https://example.com/bert")
    assert body["status"] == "approved" and body["hash"] == before.json()["hash"]
    assert response["ETag"] != before["ETag"]
    assert account_for(user).balance == balance
    changes = api.get(URL + "changes/").json()["results"]
    assert changes == [{
        "changes": {"description": {"from": "", "to": "Now with a card."},
                    "tags": {"from": [], "to": ["nlp", "en"]},
                    "source_url": {"from": "", "to": "https://example.com/bert"}},
        "actor": "user", "source": "api", "reason": "", "created_at": changes[0]["created_at"],
    }]
    event = AuditEvent.objects.get(action="model.metadata_changed")
    assert event.details["fields"] == ["description", "source_url", "tags"]
    # The same values again change nothing and record nothing.
    again = api.patch(URL, {"description": "Now with a card."}, format="json")
    assert again.status_code == 200 and again["ETag"] == response["ETag"]
    assert MetadataChange.objects.count() == 1


def test_a_stale_etag_is_412_and_changes_nothing(client_for, user, approved):
    api = client_for(user)
    stale = api.get(URL)["ETag"]
    assert api.patch(URL, {"license": "mit"}, format="json",
                     HTTP_IF_MATCH=stale).status_code == 200
    response = api.patch(URL, {"license": "apache-2.0"}, format="json", HTTP_IF_MATCH=stale)
    assert response.status_code == 412
    assert response.json()["code"] == "precondition_failed"
    assert response.json()["etag"] == api.get(URL)["ETag"]
    assert Registration.objects.get(pk=approved.pk).license == "mit"
    assert api.patch(URL, {"license": "bsd"}, format="json", HTTP_IF_MATCH="*").status_code == 200


def test_who_may_edit(anon_client, client_for, user, other_user, moderator, approved):
    body = {"description": "Changed."}
    assert anon_client.patch(URL, body, format="json").status_code == 401
    other = client_for(other_user).patch(URL, body, format="json")
    assert (other.status_code, other.json()["code"]) == (403, "permission_denied")
    assert client_for(user, scopes=["read"]).patch(URL, body, format="json").status_code == 403
    no_reason = client_for(moderator).patch(URL, body, format="json")
    assert (no_reason.status_code, set(no_reason.json()["fields"])) == (400, {"reason"})
    assert client_for(moderator, scopes=["read", "register"]).patch(
        URL, {**body, "reason": "Spam link"}, format="json").status_code == 403
    moderated = client_for(moderator).patch(URL, {**body, "reason": "Spam link"}, format="json")
    assert moderated.status_code == 200
    change = MetadataChange.objects.get()
    assert (change.actor, change.reason) == (moderator, "Spam link")
    assert Registration.objects.get(pk=approved.pk).description == "Changed."


@pytest.mark.parametrize("body, fields", [
    ({"name": "other", "description": "x"}, {"name"}),
    ({"version": "2.0.0", "hash": "cd" * 32}, {"version", "hash"}),
    ({}, {"non_field_errors"}),
    ({"reason": "only a reason"}, {"non_field_errors"}),
    ({"source_url": "ftp://example.com/x"}, {"source_url"}),
    ({"tags": ["x" * 51]}, {"tags"}),
])
def test_an_edit_refuses_what_it_cannot_change(client_for, user, approved, body, fields):
    response = client_for(user).patch(URL, body, format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == fields
    assert not MetadataChange.objects.exists()


def test_the_model_page_and_the_tag_filter_follow_an_edit(anon_client, client_for, user,
                                                         approved):
    assert anon_client.get("/api/v1/models/bert-base/").json()["description"] == ""
    client_for(user).patch(URL, {"description": "Fresh.", "tags": ["edited"]}, format="json")
    assert anon_client.get("/api/v1/models/bert-base/").json()["description"] == "Fresh."
    found = anon_client.get("/api/v1/models/?tag=edited").json()["results"]
    assert [row["name"] for row in found] == ["bert-base"]


def test_every_201_says_where_its_resource_is(anon_client, client_for, user, other_user,
                                             approved):
    api = client_for(user)
    registered = api.post("/api/v1/models/", {
        "name": "located", "version": "1.0.0", "hash": "ab" * 32, "size_bytes": 10,
        "parameter_count": 1}, format="json")
    assert registered["Location"] == "http://testserver/api/v1/models/located/versions/1.0.0/"
    assert api.get(registered["Location"]).status_code == 200
    used = client_for(other_user).post("/api/v1/models/bert-base/usage/",
                                       {"success": True, "duration_us": 5}, format="json")
    assert used["Location"] == "http://testserver/api/v1/models/bert-base/stats/?version=1.0.0"
    token = anon_client.post("/api/v1/auth/tokens/", {"username": "user", "password": PASSWORD},
                             format="json")
    assert token["Location"] == f"http://testserver/api/v1/auth/tokens/{token.json()['id']}/"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_edits_from_one_etag_one_wins(client_for, user, approved):
    clients = [client_for(user) for _ in range(4)]
    etag = clients[0].get(URL)["ETag"]
    answers = run_at_once([
        lambda api=api, n=n: api.patch(URL, {"description": f"edit {n}"}, format="json",
                                       HTTP_IF_MATCH=etag)
        for n, api in enumerate(clients)])
    assert sorted(a.status_code for a in answers) == [200, 412, 412, 412]
    winner = next(a for a in answers if a.status_code == 200)
    assert Registration.objects.get(pk=approved.pk).description == winner.json()["description"]
    assert MetadataChange.objects.count() == 1


def test_a_signed_in_list_has_its_own_etag(anon_client, client_for, user, register):
    register(user, "only-mine")  # pending: its owner sees it, anonymous callers do not
    anonymous = anon_client.get("/api/v1/models/")
    mine = client_for(user).get("/api/v1/models/", HTTP_IF_NONE_MATCH=anonymous["ETag"])
    assert mine.status_code == 200
    assert [row["name"] for row in mine.json()["results"]] == ["only-mine"]
