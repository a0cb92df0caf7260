"""The voters' pages: list, new proposal forms, the proposal page with its vote form."""

import pytest
from django.test import Client

from governance_app.models import Proposal, Vote
from tests.governance_app.conftest import VOTING_PERIOD

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser():
    def login(user):
        client = Client()
        client.force_login(user)
        return client

    return login


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_list_with_state_filter(client, make_proposal, passed, alice):
    active = make_proposal(title="Still open")
    response = client.get("/proposals/")
    assert response.status_code == 200
    assert b"Still open" in response.content
    assert b"New proposal" not in response.content
    response = client.get("/proposals/?state=failed")
    assert b"Still open" not in response.content
    assert list(response.context["proposals"]) == []
    response = client.get("/proposals/?state=active")
    assert [p.pk for p in response.context["proposals"]] == [active.pk]


def test_new_proposal_chooser_and_typed_forms(browser, steward, pending):
    client = browser(steward)
    response = client.get("/proposals/new/")
    assert response.status_code == 200
    assert b"?type=model_approval" in response.content
    assert b"10,000" in response.content  # the proposal fee
    response = client.get("/proposals/new/?type=model_approval")
    assert response.status_code == 200
    assert [str(r) for r in response.context["choices"]] == ["sentiment-mini 1.0.0"]
    assert b"name=sentiment-mini&amp;version=1.0.0" in response.content
    for kind, field in [("fee_change", "min_fee"), ("parameter_change", "parameter"),
                        ("emergency", "action")]:
        response = client.get(f"/proposals/new/?type={kind}")
        assert field in response.context["form"].fields


def test_new_model_approval_proposal(browser, steward, pending):
    response = browser(steward).post("/proposals/new/", {
        "type": "model_approval", "name": pending.name, "version": pending.version,
        "title": "Approve it",
        "description": "", "reason": "Reviewed"})
    proposal = Proposal.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/proposals/{proposal.pk}/"
    assert proposal.payload == {"name": "sentiment-mini", "version": "1.0.0",
                                "reason": "Reviewed"}


def test_new_proposal_form_errors(browser, alice, holder, pending):
    client = browser(alice)
    response = client.post("/proposals/new/", {
        "type": "fee_change", "fee_type": "execution", "method": "fixed", "base_fee": 100,
        "unit_fee": 0, "min_fee": 500, "max_fee": 100, "step_size": 1000, "title": "Fees",
        "reason": "r"})
    assert response.status_code == 200
    assert response.context["form"].errors["min_fee"] == ["Must not exceed max_fee."]
    response = client.post("/proposals/new/", {
        "type": "parameter_change", "parameter": "quorum_bps", "value": 20_000,
        "title": "Quorum", "reason": "r"})
    assert "between 1 and 10000" in response.context["form"].errors["value"][0]
    response = client.post("/proposals/new/", {
        "type": "emergency", "action": "suspend_model", "title": "Stop", "reason": "r"})
    assert response.context["form"].errors["name"] == ["This field is required."]
    response = client.post("/proposals/new/", {"type": "model_approval", "title": "",
                                               "reason": ""})
    assert set(response.context["form"].errors) == {"name", "version", "title", "reason"}

    weak = holder("weak", power=1)
    response = browser(weak).post("/proposals/new/", {
        "type": "emergency", "action": "pause_registrations", "title": "Stop", "reason": "r"})
    assert "needs voting power of at least 1000" in response.context["form"].non_field_errors()[0]
    assert Proposal.objects.count() == 0


def test_new_proposal_needs_login(client):
    response = client.get("/proposals/new/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_vote_form_and_its_errors(browser, make_proposal, alice, bob, holder, clock):
    proposal = make_proposal()
    url = f"/proposals/{proposal.pk}/"
    client = browser(bob)
    response = client.get(url)
    assert response.context["vote_blocked"] is None
    assert b"Cast vote" in response.content
    assert b"<meter" in response.content and b"<progress" in response.content

    response = client.post(url, {"reason": "no choice"})
    assert response.status_code == 200
    assert response.context["vote_form"].errors["choice"]
    assert Vote.objects.count() == 0

    response = client.post(url, {"choice": "against", "reason": "Too soon"}, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert messages_of(response) == ["Your vote (against, weight 40,000) was recorded."]
    assert b"You voted <strong>against</strong>" in response.content
    assert b"Cast vote" not in response.content

    response = client.post(url, {"choice": "for"}, follow=True)
    assert messages_of(response) == ["You have already voted on this proposal."]
    assert Vote.objects.get().choice == "against"

    clock.shift(1)
    late = holder("late", power=5_000)
    response = browser(late).get(url)
    assert b"You cannot vote: You had no voting power at this proposal" in response.content

    clock.shift(VOTING_PERIOD)
    response = browser(alice).get(url)
    assert b"You cannot vote: Voting on proposal" in response.content
    assert b"closed" in response.content


def test_anonymous_sees_the_page_and_must_log_in_to_vote(client, make_proposal):
    proposal = make_proposal()
    response = client.get(f"/proposals/{proposal.pk}/")
    assert response.status_code == 200
    assert b"to vote" in response.content
    response = client.post(f"/proposals/{proposal.pk}/", {"choice": "for"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert client.get("/proposals/999/").status_code == 404


def test_csrf_is_enforced(alice, make_proposal):
    proposal = make_proposal()
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(f"/proposals/{proposal.pk}/", {"choice": "for"}).status_code == 403
    assert Vote.objects.count() == 0


def test_execute_and_cancel_buttons(browser, passed, make_proposal, alice, bob, moderator,
                                    pending):
    proposal = passed()
    url = f"/proposals/{proposal.pk}/"
    response = browser(bob).get(url)
    assert response.context["can_execute"] is True
    assert response.context["can_cancel"] is False
    assert browser(moderator).get(url).context["can_cancel"] is True
    response = browser(bob).post(f"{url}execute/", follow=True)
    assert messages_of(response) == [f"Proposal #{proposal.pk} executed."]
    assert response.context["proposal"].state == "executed"
    assert response.context["can_execute"] is False
    pending.refresh_from_db()
    assert pending.status == "approved"
    response = browser(bob).post(f"{url}execute/", follow=True)
    assert "only a passed proposal can be executed" in messages_of(response)[0]


def test_cancel_from_the_page(browser, make_proposal, alice, bob):
    proposal = make_proposal(type="parameter_change", payload={
        "parameter": "quorum_bps", "value": 500, "reason": "r"})
    url = f"/proposals/{proposal.pk}/"
    assert browser(alice).get(url).context["can_cancel"] is True
    response = browser(bob).post(f"{url}cancel/", {"reason": "mine"}, follow=True)
    assert "Only the proposer or a moderator" in messages_of(response)[0]
    response = browser(alice).post(f"{url}cancel/", {"reason": "x" * 2001}, follow=True)
    assert messages_of(response) == ["Ensure this field has no more than 2000 characters."]
    response = browser(alice).post(f"{url}cancel/", {"reason": ""}, follow=True)
    assert messages_of(response) == [f"Proposal #{proposal.pk} canceled."]
    assert b"Canceled</strong>" in response.content


def test_payload_shown_readably(client, passed, alice):
    fee = passed(type="fee_change", title="Cheaper runs", payload={
        "fee_type": "execution", "method": "fixed", "base_fee": 50, "unit_fee": 0,
        "min_fee": 1, "max_fee": 100, "reason": "Cheaper"})
    response = client.get(f"/proposals/{fee.pk}/")
    rows = response.context["details"]["fee_rows"]
    assert ("base_fee", 50, 100) in rows
    parameter = passed(type="parameter_change", payload={
        "parameter": "quorum_bps", "value": 500, "reason": "r"})
    response = client.get(f"/proposals/{parameter.pk}/")
    assert response.context["details"]["current_value"] == 400
    assert b"quorum_bps" in response.content
