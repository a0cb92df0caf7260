"""Conflicts of interest and hidden versions (issue 8): self-grants, the owner's weight,
what a proposer may name, voters opening what they vote on, duplicates and stale targets."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import Client

from fees_app.services import account_for
from governance_app.inputs import MAX_VOTING_POWER
from governance_app.models import Proposal, Vote, VotingPowerCheckpoint
from governance_app.selectors import SUBJECT_SEARCH_LIMIT, voting_power_at
from governance_app.services import (
    proposal_cancel,
    proposal_create,
    vote_cast,
    voting_power_grant,
)
from models_app.models import Registration
from models_app.services import registration_transition
from registry_site.errors import Conflict, Forbidden
from registry_site.integrity import is_unique_violation
from registry_site.models import AuditEvent
from tests.governance_app.conftest import EXECUTION_PERIOD, VOTING_PERIOD

pytestmark = pytest.mark.django_db


def login(user):
    client = Client()
    client.force_login(user)
    return client


def approval(registration, **payload):
    return {"type": "model_approval", "title": "Approve it", "description": "",
            "payload": {"name": registration.name, "version": registration.version,
                        "reason": "Reviewed", **payload}}


# --- nobody grants voting power to themselves ------------------------------------------------

def test_self_grant_is_refused_by_the_service_and_audited(moderator):
    with pytest.raises(Forbidden) as refused:
        voting_power_grant(user=moderator, power=5_000, actor=moderator, reason="me")
    assert refused.value.code == "self_grant"
    assert refused.value.status_code == 403
    assert not VotingPowerCheckpoint.objects.exists()
    event = AuditEvent.objects.get(action="voting_power.grant_refused")
    assert (event.actor, event.details["code"]) == (moderator, "self_grant")


def test_self_grant_is_refused_in_the_admin(moderator, make_user, holder):
    client = login(moderator)
    response = client.post("/admin/governance_app/votingpowercheckpoint/add/",
                           {"user": moderator.pk, "power": 5_000, "reason": "me"})
    assert response.status_code == 200
    assert "Nobody may grant voting power to themselves" in str(
        response.context["adminform"].form.errors["user"])
    assert voting_power_at(moderator) == 0
    # The grant action with the moderator's own (older) checkpoint among those selected.
    other = make_user("other-mod", moderator=True)
    voting_power_grant(user=moderator, power=10, actor=other, reason="seed")
    bob = holder("bob", power=40_000)
    selected = list(VotingPowerCheckpoint.objects.filter(user__in=[moderator, bob])
                    .values_list("pk", flat=True))
    response = client.post("/admin/governance_app/votingpowercheckpoint/", {
        "action": "grant", "_selected_action": selected, "apply": "1", "power": 99_000,
        "reason": "everyone"}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert any("mod: Nobody may grant voting power to themselves" in m for m in messages)
    assert voting_power_at(moderator) == 10
    assert voting_power_at(bob) == 99_000
    assert AuditEvent.objects.filter(action="voting_power.grant_refused",
                                     actor=moderator).count() == 2


def test_self_grant_is_refused_by_the_command(moderator):
    with pytest.raises(CommandError, match="themselves"):
        call_command("grant_voting_power", "mod", "5000", "--actor", "mod")
    assert voting_power_at(moderator) == 0


# --- the owner's vote does not count ---------------------------------------------------------

def test_a_moderator_cannot_approve_their_own_model_through_governance(
        make_user, make_registration, client_for, clock):
    """The attack of issue 8, end to end: grant yourself power, propose, vote alone."""
    mallory = make_user("mallory", balance=1_000_000, moderator=True)
    colleague = make_user("colleague", moderator=True)
    own = make_registration("mallory-model", owner=mallory)
    api = client_for(mallory)

    with pytest.raises(Forbidden):
        voting_power_grant(user=mallory, power=5_000, actor=mallory, reason="for me")
    voting_power_grant(user=mallory, power=5_000, actor=colleague, reason="trusted")

    response = api.post("/api/v1/proposals/", approval(own), format="json")
    assert response.status_code == 201, response.content
    proposal_id = response.json()["id"]
    assert response.json()["subject"]["owner"] == "mallory"
    response = api.post(f"/api/v1/proposals/{proposal_id}/vote/", {"choice": "for"},
                        format="json")
    assert response.status_code == 201
    assert (response.json()["weight"], response.json()["counted"]) == (5_000, False)
    body = api.get(f"/api/v1/proposals/{proposal_id}/").json()
    assert body["tally"] == {"for": 0, "against": 0, "abstain": 0}
    assert body["quorum_reached"] is False
    assert body["my_vote"]["counted"] is False
    assert [w["code"] for w in body["warnings"]] == ["owner_vote_excluded"]
    assert "the owner's vote does not count" in body["warnings"][0]["detail"]
    page = login(mallory).get(f"/proposals/{proposal_id}/")
    assert b"The owner's vote does not count" in page.content
    assert b"(owner: not counted)" in page.content

    clock.shift(VOTING_PERIOD)
    api = client_for(mallory)  # the first token has expired by now
    assert api.get(f"/api/v1/proposals/{proposal_id}/").json()["state"] == "failed"
    response = api.post(f"/api/v1/proposals/{proposal_id}/execute/")
    assert (response.status_code, response.json()["code"]) == (409, "not_executable")
    own.refresh_from_db()
    assert own.status == Registration.Status.PENDING


def test_the_owners_vote_is_left_out_of_tally_and_quorum(holder, make_registration, bob,
                                                        clock):
    owner = holder("owner", power=50_000)
    voter = holder("voter", power=2_000)
    own = make_registration("owned-model", owner=owner)
    proposal = proposal_create(proposer=owner, **approval(own))
    assert proposal.total_power_at_snapshot == 92_000
    assert proposal.quorum == 3_680
    assert vote_cast(proposal=proposal, voter=owner, choice="for").counted is False
    assert vote_cast(proposal=proposal, voter=voter, choice="for").counted is True
    vote_cast(proposal=proposal, voter=bob, choice="abstain")
    proposal.refresh_from_db()
    assert proposal.tally == {"for": 2_000, "against": 0, "abstain": 40_000}
    event = AuditEvent.objects.filter(action="proposal.voted", actor=owner).get()
    assert (event.details["weight"], event.details["counted"]) == (50_000, False)
    clock.shift(VOTING_PERIOD)
    assert Proposal.objects.with_state().get(pk=proposal.pk).state == "passed"


def test_suspend_proposal_excludes_the_owner_too(alice, holder, make_registration, moderator):
    owner = holder("owner", power=5_000)
    model = make_registration("to-suspend", owner=owner)
    registration_transition(registration=model, to_status="approved", actor=moderator,
                            source="admin", reason="ok")
    proposal = proposal_create(proposer=alice, type="emergency", title="Stop", payload={
        "action": "suspend_model", "name": model.name, "version": model.version,
        "reason": "Leaks"})
    assert vote_cast(proposal=proposal, voter=owner, choice="against").counted is False
    proposal.refresh_from_db()
    assert proposal.tally["against"] == 0


# --- what a proposer may name ----------------------------------------------------------------

def test_validation_never_tells_whether_a_hidden_version_exists(client_for, holder, pending,
                                                                 moderator):
    rejected = Registration.objects.create(
        name="hidden-rejected", version="1.0.0", owner=pending.owner, hash="0" * 64,
        size_bytes=1, parameter_count=1, status=Registration.Status.REJECTED)
    missing = {"name": "no-such-model", "version": "1.0.0"}
    hidden = [{"name": pending.name, "version": pending.version},
              {"name": rejected.name, "version": rejected.version}]

    def answer(client, target):
        body = approval(pending)
        body["payload"].update(target)
        response = client.post("/api/v1/proposals/", body, format="json")
        return response.status_code, response.json()["code"], response.json().get("fields")

    weak = client_for(holder("weak", power=10))
    assert answer(weak, missing)[:2] == (403, "insufficient_voting_power")
    for target in hidden:
        assert answer(weak, target)[:2] == (403, "insufficient_voting_power")

    strong = client_for(holder("strong", power=5_000))
    status, code, fields = answer(strong, missing)
    assert (status, code) == (400, "invalid")
    assert fields == {"payload.version": ["No registration no-such-model 1.0.0."]}
    for target in hidden:
        status, code, fields = answer(strong, target)
        assert (status, code) == (400, "invalid")
        assert fields == {"payload.version": [
            f"No registration {target['name']} {target['version']}."]}
    assert Proposal.objects.count() == 0


def test_new_proposal_page_searches_only_visible_versions_in_a_bounded_list(
        alice, steward, holder, make_registration, pending):
    for n in range(SUBJECT_SEARCH_LIMIT + 5):
        make_registration(f"bulk-model-{n:02d}")
    bob = holder("bob-viewer", power=5_000)
    own = make_registration("bobs-own", owner=bob)

    response = login(bob).get("/proposals/new/?type=model_approval")
    assert [str(r) for r in response.context["choices"]] == [str(own)]
    assert b"sentiment-mini" not in response.content
    response = login(bob).get("/proposals/new/?type=model_approval&q=bulk")
    assert response.context["choices"] == []

    response = login(steward).get("/proposals/new/?type=model_approval&q=bulk")
    assert len(response.context["choices"]) == SUBJECT_SEARCH_LIMIT
    response = login(steward).get("/proposals/new/?type=model_approval&q=senti")
    assert [str(r) for r in response.context["choices"]] == ["sentiment-mini 1.0.0"]
    response = login(alice).get("/proposals/new/?type=model_approval&q=senti")
    assert response.context["choices"] == []  # an ordinary holder: carol's is hidden
    response = login(steward).get("/proposals/new/?type=model_approval&q=%00")
    assert response.status_code == 400  # NUL is refused before any view
    response = login(steward).get(
        "/proposals/new/?type=model_approval&name=sentiment-mini&version=1.0.0")
    assert response.context["form"]["name"].value() == "sentiment-mini"
    assert b'name="version" value="1.0.0"' in response.content


@pytest.mark.parametrize("kind", [["model_approval"], {"a": 1}, 7, None])
def test_a_type_that_is_not_a_string_is_a_400_naming_it(client_for, alice, kind):
    response = client_for(alice).post("/api/v1/proposals/", {
        "type": kind, "title": "t", "payload": {}}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "type" in response.json()["fields"]
    assert Proposal.objects.count() == 0


def test_one_answer_names_every_bad_field_on_the_api_and_the_page(client_for, alice, pending):
    body = {"type": "model_approval", "title": "x" * 201, "description": "",
            "payload": {"name": pending.name, "version": "9.9", "extra": 1}}
    response = client_for(alice).post("/api/v1/proposals/", body, format="json")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields == {
        "title": ["Ensure this field has no more than 200 characters."],
        "payload.extra": ["Unknown field for a model_approval proposal."],
        "payload.reason": ["This field is required."],
    }
    page = login(alice).post("/proposals/new/", {
        "type": "fee_change", "fee_type": "nope", "method": "fixed", "base_fee": "ten",
        "unit_fee": "0", "min_fee": "0", "max_fee": "100", "title": "", "reason": ""})
    errors = page.context["form"].errors
    assert set(errors) == {"fee_type", "base_fee", "title", "reason"}
    assert errors["base_fee"] == ["A valid integer is required."]
    assert Proposal.objects.count() == 0


# --- voters can open what they vote on -------------------------------------------------------

def test_a_version_under_an_open_proposal_is_visible_to_signed_in_users(
        client, client_for, make_proposal, bob, pending, clock):
    page = f"/models/{pending.name}/?version={pending.version}"
    api = f"/api/v1/models/{pending.name}/?version={pending.version}"
    assert login(bob).get(page).status_code == 404
    assert client_for(bob).get(api).status_code == 404

    proposal = make_proposal()
    response = login(bob).get(page)
    assert response.status_code == 200
    assert response.context["selected"] == pending
    assert response.context["can_deprecate"] is False
    body = client_for(bob).get(api).json()
    assert (body["version"], body["status"]) == ("1.0.0", "pending")
    assert client.get(page).status_code == 404  # anonymous visitors still do not see it
    response = client_for(bob).post(f"/api/v1/models/{pending.name}/status/", {
        "version": pending.version, "status": "approved", "reason": "me"}, format="json")
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == "pending"

    detail = login(bob).get(f"/proposals/{proposal.pk}/")
    assert b'href="/models/sentiment-mini/?version=1.0.0"' in detail.content
    assert client_for(bob).get(f"/api/v1/proposals/{proposal.pk}/").json()["subject"][
        "url"] == "/models/sentiment-mini/?version=1.0.0"

    clock.shift(VOTING_PERIOD)  # voting over: hidden again
    assert login(bob).get(page).status_code == 404



def test_a_passed_proposal_awaiting_execution_keeps_its_version_visible(
        client, passed, pending, bob, alice, clock):
    page = f"/models/{pending.name}/?version={pending.version}"
    proposal = passed()  # voting is over, the proposal passed and is not executed yet
    assert login(bob).get(page).status_code == 200
    assert client.get(page).status_code == 404
    clock.shift(EXECUTION_PERIOD)  # past its execution deadline: expired, hidden again
    assert Proposal.objects.with_state().get(pk=proposal.pk).state == "expired"
    assert login(bob).get(page).status_code == 404


def test_a_version_under_an_open_proposal_is_shown_but_its_artifact_is_not_handed_out(
        client_for, registrant, bob, steward, clock):
    """Voters may read the version they vote on; its file, which no moderator has approved,
    still reaches only its owner (and moderators)."""
    import hashlib
    import io

    from models_app.artifacts import artifact_upload
    from models_app.services import registration_create

    data = bytes(range(256)) * 4
    registration = registration_create(
        owner=registrant, name="unreviewed", version="1.0.0",
        hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data), parameter_count=1)
    artifact_upload(registration=registration, user=registrant, stream=io.BytesIO(data),
                    content_length=len(data))
    proposal_create(proposer=steward, type="model_approval", title="Approve it", payload={
        "name": "unreviewed", "version": "1.0.0", "reason": "Looks good"})
    api = client_for(bob)
    assert api.get("/api/v1/models/unreviewed/?version=1.0.0").status_code == 200
    download = api.get("/api/v1/models/unreviewed/versions/1.0.0/artifact/")
    assert (download.status_code, download.json()["code"]) == (404, "not_found")
    assert client_for(registrant).get(
        "/api/v1/models/unreviewed/versions/1.0.0/artifact/").status_code == 200

# --- duplicates and stale targets ------------------------------------------------------------

def test_a_duplicate_open_proposal_is_a_409(client_for, make_proposal, steward, pending):
    first = make_proposal()
    balance = account_for(steward).balance
    response = client_for(steward).post("/api/v1/proposals/", approval(pending), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_proposal"
    assert response.json()["proposal_id"] == first.pk
    assert Proposal.objects.count() == 1
    assert account_for(steward).balance == balance
    proposal_cancel(proposal=first, actor=steward, reason="redo")
    assert client_for(steward).post("/api/v1/proposals/", approval(pending),
                                  format="json").status_code == 201


def test_a_changed_target_is_shown_on_the_page_and_the_api(client_for, make_proposal, alice,
                                                           bob, pending, moderator):
    proposal = make_proposal()
    warnings = client_for(bob).get(f"/api/v1/proposals/{proposal.pk}/").json()["warnings"]
    assert [w["code"] for w in warnings] == ["owner_vote_excluded"]
    registration_transition(registration=pending, to_status="rejected", actor=moderator,
                            source="admin", reason="broken")
    body = client_for(bob).get(f"/api/v1/proposals/{proposal.pk}/").json()
    assert body["state"] == "active"
    assert body["warnings"][1:] == [{"code": "target_changed", "detail": (
        "sentiment-mini 1.0.0 is no longer pending (it is rejected): executing this "
        "proposal will be refused.")}]
    assert body["subject"]["status"] == "rejected"
    listed = client_for(bob).get("/api/v1/proposals/").json()["results"][0]
    assert listed["warnings"] == body["warnings"]
    page = login(alice).get(f"/proposals/{proposal.pk}/")
    assert b"The target has changed" in page.content


# --- a proposal tells no more about its version than the version's own page ------------------

HIDDEN_SUBJECT = {"name": "bob-secret", "version": "1.0", "visible": False, "owner": None,
                  "status": None, "expected_status": "pending", "url": None}


def test_a_proposal_does_not_reveal_a_hidden_versions_status_or_owner(
        client_for, anon_client, make_registration, bob, alice, moderator):
    secret = make_registration("bob-secret", "1.0", owner=bob)
    proposal = proposal_create(proposer=bob, **approval(secret))
    model_url = "/api/v1/models/bob-secret/?version=1.0"
    proposal_url = f"/api/v1/proposals/{proposal.pk}/"

    # Open: signed-in readers may open the version, so they see it; anonymous ones may not.
    assert anon_client.get(model_url).status_code == 404
    body = anon_client.get(proposal_url).json()
    assert body["subject"] == HIDDEN_SUBJECT
    assert [w["code"] for w in body["warnings"]] == ["owner_vote_excluded"]
    assert "bob owns" not in body["warnings"][0]["detail"]
    page = Client().get(f"/proposals/{proposal.pk}/")
    assert b"shown to those who may see this version" in page.content
    assert b'href="/models/bob-secret/' not in page.content
    assert client_for(alice).get(model_url).status_code == 200
    subject = client_for(alice).get(proposal_url).json()["subject"]
    assert (subject["visible"], subject["owner"], subject["status"]) == (True, "bob", "pending")

    # Canceled, then rejected: hidden from everyone but bob and moderators.
    proposal_cancel(proposal=proposal, actor=bob, reason="not yet")
    registration_transition(registration=secret, to_status="rejected", actor=moderator,
                            source="admin", reason="no")
    for reader, client in [("anonymous", anon_client), ("alice", client_for(alice))]:
        assert client.get(model_url).status_code == 404, reader
        response = client.get(proposal_url)
        assert response.json()["subject"] == HIDDEN_SUBJECT, reader
        assert b"rejected" not in response.content, reader
        listed = client.get("/api/v1/proposals/").json()["results"]
        assert [p["subject"] for p in listed] == [HIDDEN_SUBJECT], reader
    for page in [Client().get(f"/proposals/{proposal.pk}/"),
                 login(alice).get(f"/proposals/{proposal.pk}/")]:
        assert page.status_code == 200
        assert b"rejected" not in page.content
        assert b"shown to those who may see this version" in page.content
    for reader in [bob, moderator]:
        subject = client_for(reader).get(proposal_url).json()["subject"]
        assert (subject["visible"], subject["owner"], subject["status"]) == (
            True, "bob", "rejected")
        assert b"rejected" in login(reader).get(f"/proposals/{proposal.pk}/").content


def test_a_changed_target_is_not_announced_to_readers_who_may_not_see_it(
        client_for, anon_client, make_proposal, pending, moderator):
    proposal = make_proposal()
    registration_transition(registration=pending, to_status="rejected", actor=moderator,
                            source="admin", reason="broken")
    body = anon_client.get(f"/api/v1/proposals/{proposal.pk}/").json()
    assert [w["code"] for w in body["warnings"]] == ["owner_vote_excluded"]
    assert body["subject"]["status"] is None
    page = Client().get(f"/proposals/{proposal.pk}/")
    assert b"The target has changed" not in page.content
    assert b"rejected" not in page.content
    codes = [w["code"] for w in client_for(moderator).get(
        f"/api/v1/proposals/{proposal.pk}/").json()["warnings"]]
    assert codes == ["owner_vote_excluded", "target_changed"]


# Anonymous: the page of proposals. Signed in: the token (which carries the moderator check),
# the page and the caller's own votes. Never one query per proposal.
@pytest.mark.parametrize(("reader", "queries"), [("anonymous", 1), ("alice", 3),
                                                 ("moderator", 3)])
def test_the_proposal_list_costs_the_same_queries_for_one_or_many(
        client_for, anon_client, make_registration, steward, alice, moderator, reader, queries,
        django_assert_num_queries):
    client = {"anonymous": anon_client, "alice": client_for(alice),
              "moderator": client_for(moderator)}[reader]
    client.get("/api/v1/proposals/")  # the token's last use is written once, not measured
    for count in [1, 4]:
        while Proposal.objects.count() < count:
            proposal_create(proposer=steward, **approval(
                make_registration(f"listed-{Proposal.objects.count()}")))
        with django_assert_num_queries(queries):
            listed = client.get("/api/v1/proposals/").json()["results"]
        assert len(listed) == count
        assert all(p["subject"]["visible"] == (reader != "anonymous") for p in listed)


# --- input that answered 500 -----------------------------------------------------------------

@pytest.mark.parametrize("where", ["payload.name", "payload.reason", "title",
                                   "payload.extra\ud800"])
@pytest.mark.parametrize("bad", ["\ud800", "a\x00b"])
def test_nul_or_lone_surrogate_in_a_proposal_is_a_400(client_for, alice, pending, where, bad):
    body = approval(pending)
    if where.startswith("payload."):
        body["payload"][where.removeprefix("payload.")] = bad  # a value, or a surrogate key
    else:
        body[where] = bad
    response = client_for(alice).generic(
        "POST", "/api/v1/proposals/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    if "\ud800" in bad + where:
        # The API's JSON parser refuses a lone surrogate anywhere, naming where it is.
        assert response.json()["code"] == "parse_error"
        assert where.split("\ud800")[0] in response.json()["detail"]
    else:
        assert response.json()["code"] == "invalid"
        assert response.json()["fields"]
    assert Proposal.objects.count() == 0


@pytest.mark.parametrize("bad", ["\ud800", "a\x00b"])
def test_nul_or_lone_surrogate_in_a_vote_or_cancel_reason_is_a_400(client_for, make_proposal,
                                                                   alice, bad):
    proposal = make_proposal()
    for action, body in [("vote", {"choice": "for", "reason": bad}),
                         ("vote", {"choice": bad}), ("cancel", {"reason": bad})]:
        response = client_for(alice).generic(
            "POST", f"/api/v1/proposals/{proposal.pk}/{action}/", json.dumps(body),
            content_type="application/json")
        expected = "parse_error" if "\ud800" in bad else "invalid"
        assert (response.status_code, response.json()["code"]) == (400, expected), action
    assert Vote.objects.count() == 0
    proposal.refresh_from_db()
    assert proposal.canceled_at is None


# --- counters that would overflow 64 bits ----------------------------------------------------

def test_a_total_power_beyond_64_bits_is_refused_not_a_500(client_for, alice, make_user,
                                                          moderator):
    holders = 2**63 // MAX_VOTING_POWER + 1
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"whale{n}") for n in range(holders))
    VotingPowerCheckpoint.objects.bulk_create(
        VotingPowerCheckpoint(user=user, power=MAX_VOTING_POWER) for user in users)
    response = client_for(alice).post("/api/v1/proposals/", {
        "type": "parameter_change", "title": "t",
        "payload": {"parameter": "quorum_bps", "value": 500, "reason": "r"}}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "voting_power_overflow")
    assert Proposal.objects.count() == 0


def test_a_grant_that_would_overflow_the_total_is_refused(alice, make_user, moderator):
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"whale{n}") for n in range(2**63 // MAX_VOTING_POWER))
    VotingPowerCheckpoint.objects.bulk_create(
        VotingPowerCheckpoint(user=user, power=MAX_VOTING_POWER) for user in users)
    newcomer = make_user("newcomer")
    with pytest.raises(Conflict) as refused:
        voting_power_grant(user=newcomer, power=MAX_VOTING_POWER, actor=moderator)
    assert refused.value.code == "voting_power_overflow"
    assert voting_power_at(newcomer) == 0


# --- only the unique violation means "already voted" -----------------------------------------

def test_only_the_one_vote_constraint_counts_as_already_voted(make_proposal, alice, bob):
    proposal = make_proposal()
    Vote.objects.create(proposal=proposal, voter=alice, choice="for", weight=1)
    with pytest.raises(IntegrityError) as duplicate, transaction.atomic():
        Vote.objects.create(proposal=proposal, voter=alice, choice="for", weight=1)
    assert is_unique_violation(duplicate.value, model=Vote, constraint="vote_one_per_voter") is True
    assert is_unique_violation(duplicate.value) is True
    with pytest.raises(IntegrityError) as other, transaction.atomic():
        Vote.objects.create(proposal=proposal, voter=bob, choice="for", weight=0)
    assert is_unique_violation(other.value, model=Vote, constraint="vote_one_per_voter") is False


def test_a_backdated_grant_cannot_reach_into_a_snapshot(make_proposal, bob, moderator):
    proposal = make_proposal()
    with pytest.raises(Conflict) as refused:
        voting_power_grant(user=bob, power=1_000_000, actor=moderator,
                           effective_from=proposal.created_at)
    assert refused.value.code == "snapshot_taken"
    assert voting_power_at(bob, proposal.created_at) == 40_000
    checkpoint = voting_power_grant(user=bob, power=7, actor=moderator)
    assert checkpoint.effective_from > proposal.created_at  # the frozen clock is bumped
    assert vote_cast(proposal=proposal, voter=bob, choice="for").weight == 40_000


def test_the_compiled_version_reads_match_the_orm_for_every_kind_of_caller(
        make_proposal, bob, steward, pending, clock):
    """models_app.selectors.VisibleCompiled: one compiled query per kind of caller, each run
    with the caller and the time; the ORM's visible_to is the reference, open proposal or
    not, before and after the vote closes."""
    from django.contrib.auth.models import AnonymousUser

    from models_app.selectors import model_versions, visible_versions
    from registry_site.errors import NotFound

    def ids(user, *, exact):
        try:
            return [r.pk for r in model_versions(name=pending.name, user=user,
                                                 exact_usage=exact)]
        except NotFound:
            return []

    owner = pending.owner
    callers = [AnonymousUser(), bob, owner, steward]
    for when in ("before", "open", "closed"):
        if when == "open":
            make_proposal()
        if when == "closed":
            clock.shift(VOTING_PERIOD)
        for caller in callers:
            expected = [r.pk for r in visible_versions(name=pending.name, user=caller)]
            assert ids(caller, exact=True) == expected, (when, caller)
            assert ids(caller, exact=False) == expected, (when, caller)
        if when == "open":
            assert ids(bob, exact=True) == [pending.pk]
    assert ids(bob, exact=True) == []  # closed again: bob no longer sees it
