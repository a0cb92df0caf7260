"""The proposals API: shapes, status codes, filters and the permission matrix."""

import pytest
from django.db import connection

from fees_app.services import account_for
from governance_app.models import Proposal, Vote
from governance_app.services import proposal_cancel, proposal_execute, vote_cast
from models_app.models import StatusChange
from tests.governance_app.conftest import VOTING_PERIOD

pytestmark = pytest.mark.django_db

DETAIL_FIELDS = {"id", "type", "title", "description", "payload", "proposer", "state",
                 "created_at", "voting_ends_at", "execution_deadline", "quorum", "tally",
                 "quorum_reached", "my_vote", "subject", "warnings"}


def approval(pending, **extra):
    return {"type": "model_approval", "title": "Approve sentiment-mini",
            "description": "It works.",
            "payload": {"name": pending.name, "version": pending.version,
                        "reason": "Passed review"}, **extra}


def test_create_answers_201_with_the_proposal(client_for, alice, bob, steward, pending):
    response = client_for(steward).post("/api/v1/proposals/", approval(pending), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == DETAIL_FIELDS
    assert body["state"] == "active"
    assert body["proposer"] == "dora"
    assert body["quorum"] == 4_040  # 4% of alice's, bob's and the steward's 101,000
    assert body["tally"] == {"for": 0, "against": 0, "abstain": 0}
    assert body["quorum_reached"] is False
    assert body["my_vote"] is None
    assert body["payload"] == {"name": "sentiment-mini", "version": "1.0.0",
                               "reason": "Passed review"}


def test_create_refusals_change_nothing(client_for, anon_client, alice, holder, pending):
    balance = account_for(alice).balance
    assert anon_client.post("/api/v1/proposals/", approval(pending),
                            format="json").status_code == 401
    assert client_for(alice, scopes=["read", "vote"]).post(
        "/api/v1/proposals/", approval(pending), format="json").status_code == 403
    bad = approval(pending)
    bad["payload"] = {"name": pending.name, "version": "9.9.9", "reason": "r"}
    response = client_for(alice).post("/api/v1/proposals/", bad, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "payload.version" in response.json()["fields"]
    assert client_for(alice).post("/api/v1/proposals/", {**approval(pending), "payload": "x"},
                                  format="json").status_code == 400
    weak = holder("weak", power=10)
    response = client_for(weak).post("/api/v1/proposals/", approval(pending), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_voting_power"
    poor = holder("poor", power=5_000, balance=100, moderator=True)
    response = client_for(poor).post("/api/v1/proposals/", approval(pending), format="json")
    assert response.status_code == 402
    assert response.json()["needed"] == 10_000
    assert Proposal.objects.count() == 0
    assert account_for(alice).balance == balance
    assert account_for(poor).balance == 100


def test_vote_matrix(client_for, anon_client, make_proposal, alice, bob, holder):
    proposal = make_proposal()
    url = f"/api/v1/proposals/{proposal.pk}/vote/"
    assert anon_client.post(url, {"choice": "for"}, format="json").status_code == 401
    assert client_for(bob, scopes=["read", "propose"]).post(
        url, {"choice": "for"}, format="json").status_code == 403
    assert client_for(bob).post(url, {"choice": "maybe"}, format="json").status_code == 400
    nobody = holder("nobody", power=0)
    response = client_for(nobody).post(url, {"choice": "for"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "no_voting_power")
    assert client_for(bob).post("/api/v1/proposals/999/vote/", {"choice": "for"},
                                format="json").status_code == 404

    bob_client = client_for(bob, scopes=["vote"])
    response = bob_client.post(url, {"choice": "against", "reason": "Not yet"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["weight"] == 40_000
    assert response.json()["choice"] == "against"
    response = bob_client.post(url, {"choice": "for"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "already_voted")
    assert Vote.objects.count() == 1
    proposal.refresh_from_db()
    assert proposal.tally == {"for": 0, "against": 40_000, "abstain": 0}


def test_vote_after_close_is_409(client_for, make_proposal, bob, clock):
    proposal = make_proposal()
    clock.shift(VOTING_PERIOD)
    response = client_for(bob).post(f"/api/v1/proposals/{proposal.pk}/vote/",
                                    {"choice": "for"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "voting_closed")


def test_detail_shows_my_vote(client_for, anon_client, make_proposal, alice, bob):
    proposal = make_proposal()
    vote_cast(proposal=proposal, voter=alice, choice="abstain", reason="Conflict of interest")
    body = client_for(alice).get(f"/api/v1/proposals/{proposal.pk}/").json()
    assert set(body) == DETAIL_FIELDS
    assert body["my_vote"]["choice"] == "abstain"
    assert body["my_vote"]["weight"] == 60_000
    assert body["tally"]["abstain"] == 60_000
    assert body["quorum_reached"] is True
    assert client_for(bob).get(f"/api/v1/proposals/{proposal.pk}/").json()["my_vote"] is None
    assert anon_client.get(f"/api/v1/proposals/{proposal.pk}/").json()["my_vote"] is None
    assert anon_client.get("/api/v1/proposals/999/").status_code == 404
    assert client_for(alice, scopes=["vote"]).get(
        f"/api/v1/proposals/{proposal.pk}/").status_code == 403


def test_votes_list(anon_client, make_proposal, alice, bob):
    proposal = make_proposal()
    vote_cast(proposal=proposal, voter=alice, choice="for")
    vote_cast(proposal=proposal, voter=bob, choice="against", reason="No")
    body = anon_client.get(f"/api/v1/proposals/{proposal.pk}/votes/").json()
    assert [(v["voter"], v["choice"], v["weight"]) for v in body["results"]] == [
        ("bob", "against", 40_000), ("alice", "for", 60_000)]
    assert anon_client.get("/api/v1/proposals/999/votes/").status_code == 404


def test_execute_matrix(client_for, anon_client, passed, bob, pending, clock):
    proposal = passed()
    url = f"/api/v1/proposals/{proposal.pk}/execute/"
    assert anon_client.post(url).status_code == 401
    assert client_for(bob, scopes=["read"]).post(url).status_code == 403
    response = client_for(bob).post(url)
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "executed"
    pending.refresh_from_db()
    assert pending.status == "approved"
    response = client_for(bob).post(url)
    assert (response.status_code, response.json()["code"]) == (409, "not_executable")
    assert StatusChange.objects.filter(to_status="approved").count() == 1


def test_execute_active_is_409(client_for, make_proposal, bob):
    proposal = make_proposal()
    response = client_for(bob).post(f"/api/v1/proposals/{proposal.pk}/execute/")
    assert response.status_code == 409
    assert response.json()["state"] == "active"


def test_cancel_matrix(client_for, anon_client, make_proposal, alice, bob, holder, moderator):
    proposal = make_proposal(proposer=bob, type="parameter_change",
                             payload={"parameter": "quorum_bps", "value": 500, "reason": "r"})
    stranger = holder("stranger")
    url = f"/api/v1/proposals/{proposal.pk}/cancel/"
    assert anon_client.post(url, {"reason": "x"}, format="json").status_code == 401
    assert client_for(bob, scopes=["vote"]).post(url, {"reason": "x"},
                                                 format="json").status_code == 403
    response = client_for(stranger).post(url, {"reason": "x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "not_proposer")
    assert client_for(bob).post(url, {"reason": "x" * 5000},
                                format="json").status_code == 400
    vote_cast(proposal=proposal, voter=alice, choice="against")
    response = client_for(bob).post(url, {"reason": "x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "others_voted")
    response = client_for(moderator).post(url, {"reason": "Spam"}, format="json")
    assert response.status_code == 200
    assert response.json()["state"] == "canceled"
    assert client_for(moderator).post(url, {"reason": "Again"}, format="json").status_code == 409


def test_list_filters_ordering_and_pagination(anon_client, client_for, make_proposal, passed,
                                             alice, bob, moderator, make_registration, clock):
    change = {"type": "parameter_change",
              "payload": {"parameter": "quorum_bps", "value": 500, "reason": "r"}}
    executed = passed(**change)
    proposal_execute(proposal=executed, actor=alice)
    canceled = make_proposal(**change)
    proposal_cancel(proposal=canceled, actor=moderator, reason="x")
    own = make_registration("bobs-model", owner=bob)
    by_bob = make_proposal(proposer=bob, title="Bob's", payload={
        "name": own.name, "version": own.version, "reason": "r"})

    def ids(query):
        response = anon_client.get(f"/api/v1/proposals/{query}")
        assert response.status_code == 200, response.content
        return [p["id"] for p in response.json()["results"]]

    assert ids("") == [by_bob.pk, canceled.pk, executed.pk]
    assert ids("?state=active") == [by_bob.pk]
    assert ids("?state=executed") == [executed.pk]
    assert ids("?state=canceled") == [canceled.pk]
    assert ids("?type=model_approval") == [by_bob.pk]
    assert ids("?proposer=bob") == [by_bob.pk]
    assert ids("?ordering=created_at") == [executed.pk, canceled.pk, by_bob.pk]
    assert anon_client.get("/api/v1/proposals/?state=bogus").status_code == 400
    page = anon_client.get("/api/v1/proposals/?page_size=2").json()
    assert len(page["results"]) == 2 and page["next"]
    assert len(anon_client.get(page["next"]).json()["results"]) == 1
    clock.shift(VOTING_PERIOD)
    assert ids("?state=failed") == [by_bob.pk]


def test_list_query_count_is_fixed(client_for, make_proposal, alice, bob, holder,
                                   django_assert_num_queries):
    client = client_for(alice)
    for n in range(5):
        proposal = make_proposal(type="parameter_change", title=f"p{n}",
                                 payload={"parameter": "quorum_bps", "value": 500, "reason": "r"})
        vote_cast(proposal=proposal, voter=alice, choice="for")
    # The token lookup (which carries the moderator check deciding which versions the caller
    # may see), the page of proposals with their state and subject, the caller's votes; the
    # token's last-used stamp was written by the first request.
    client.get("/api/v1/proposals/")
    with django_assert_num_queries(3):
        response = client.get("/api/v1/proposals/")
    assert all(p["my_vote"]["choice"] == "for" for p in response.json()["results"])


def test_proposer_cancels_without_a_body(client_for, make_proposal, alice):
    proposal = make_proposal(type="parameter_change",
                             payload={"parameter": "quorum_bps", "value": 500, "reason": "r"})
    response = client_for(alice).post(f"/api/v1/proposals/{proposal.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["state"] == "canceled"


def test_registrations_paused_accepts_json_booleans(client_for, alice):
    response = client_for(alice).post("/api/v1/proposals/", {
        "type": "parameter_change", "title": "Pause", "description": "",
        "payload": {"parameter": "registrations_paused", "value": True, "reason": "Incident"},
    }, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["payload"]["value"] == 1


def test_null_character_in_a_payload_is_a_field_error(client_for, alice):
    response = client_for(alice).post("/api/v1/proposals/", {
        "type": "parameter_change", "title": "Quorum", "description": "",
        "payload": {"parameter": "quorum_bps", "value": 500, "reason": "r\x00"},
    }, format="json")
    assert response.status_code == 400
    assert "payload.reason" in response.json()["fields"]


@pytest.mark.parametrize("field", ["state", "type"])
def test_list_filter_choice_errors_name_the_choices_without_echoing_the_input(anon_client,
                                                                              field):
    response = anon_client.get(f"/api/v1/proposals/?{field}=%3Cb%3Ebogus")
    assert response.status_code == 400
    (message,) = response.json()["fields"][field]
    assert message.startswith("Must be one of")
    assert "bogus" not in message


def test_vote_query_count(client_for, make_proposal, alice, bob, django_assert_num_queries):
    proposal = make_proposal()
    api = client_for(bob)
    api.get("/api/v1/proposals/")  # stamps the token's last_used_at
    # token; key-share lock, state with weight, subject owner, vote upsert, audit event,
    # tally; savepoint and release (the lock: PostgreSQL only)
    with django_assert_num_queries(9 if connection.vendor == "postgresql" else 8):
        assert api.post(f"/api/v1/proposals/{proposal.pk}/vote/", {"choice": "for"},
                        format="json").status_code == 201


@pytest.mark.parametrize("pk", ["999999", "99999999999999999999"])
def test_a_vote_on_a_proposal_that_does_not_exist_is_a_404(client_for, bob, pk):
    response = client_for(bob).post(f"/api/v1/proposals/{pk}/vote/", {"choice": "for"},
                                    format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_retried_vote_or_proposal_with_its_key_runs_once(client_for, make_proposal, bob,
                                                           steward, make_registration):
    proposal = make_proposal()
    api = client_for(bob)
    url = f"/api/v1/proposals/{proposal.pk}/vote/"
    first = api.post(url, {"choice": "for"}, format="json", HTTP_IDEMPOTENCY_KEY="vote-1")
    assert first.status_code == 201, first.content
    again = api.post(url, {"choice": "for"}, format="json", HTTP_IDEMPOTENCY_KEY="vote-1")
    assert (again.status_code, again.content) == (201, first.content)
    assert again["Idempotent-Replayed"] == "true"
    changed = api.post(url, {"choice": "against"}, format="json", HTTP_IDEMPOTENCY_KEY="vote-1")
    assert (changed.status_code, changed.json()["code"]) == (422, "idempotency_key_reused")
    assert Vote.objects.filter(proposal=proposal).count() == 1
    proposal.refresh_from_db()
    assert proposal.tally["for"] == 40_000

    proposer = client_for(steward)
    balance = account_for(steward).balance
    body = {**approval(make_registration("other-mini")), "title": "Approve it, again"}
    created = proposer.post("/api/v1/proposals/", body, format="json",
                            HTTP_IDEMPOTENCY_KEY="proposal-1")
    replayed = proposer.post("/api/v1/proposals/", body, format="json",
                             HTTP_IDEMPOTENCY_KEY="proposal-1")
    assert created.status_code == 201, created.content
    assert (replayed.status_code, replayed.content) == (201, created.content)
    assert Proposal.objects.filter(title="Approve it, again").count() == 1
    assert account_for(steward).balance == balance - 10_000
