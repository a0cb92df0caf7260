"""The moderators' console, the operator commands and the metrics collector."""

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from governance_app.models import Proposal, ProposalState, VotingPowerCheckpoint
from governance_app.selectors import voting_power_at
from governance_app.services import voting_power_grant
from registry_site.errors import InvalidInput
from registry_site.metrics import render_metrics
from registry_site.models import AuditEvent
from registry_site.parameters import get_parameter

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_for():
    def login(user):
        client = Client()
        client.force_login(user)
        return client

    return login


def test_moderator_sees_proposals_votes_and_power(admin_client_for, moderator, make_proposal,
                                                  alice):
    proposal = make_proposal()
    client = admin_client_for(moderator)
    for path in ["proposal/", f"proposal/{proposal.pk}/change/", "proposal/?state=active",
                 "vote/", "votingpowercheckpoint/", "votingpowercheckpoint/add/"]:
        assert client.get(f"/admin/governance_app/{path}").status_code == 200, path
    page = client.get(f"/admin/governance_app/proposal/{proposal.pk}/change/")
    assert b'name="payload"' not in page.content  # read-only
    assert b'name="votes_for"' not in page.content
    assert b'name="_save"' not in page.content


def test_admin_cancel_action_asks_for_a_reason(admin_client_for, moderator, make_proposal):
    proposal = make_proposal()
    client = admin_client_for(moderator)
    data = {"action": "cancel", "_selected_action": [proposal.pk]}
    response = client.post("/admin/governance_app/proposal/", data)
    assert response.status_code == 200
    assert b"Cancel these proposals" in response.content
    response = client.post("/admin/governance_app/proposal/", {**data, "apply": "1"})
    assert response.status_code == 200  # the form again: the reason is required
    response = client.post("/admin/governance_app/proposal/",
                           {**data, "apply": "1", "reason": "Spam"})
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert (proposal.canceled_by, proposal.cancel_reason) == (moderator, "Spam")
    assert Proposal.objects.with_state().get().state == ProposalState.CANCELED


def test_admin_grant_action_and_add_form(admin_client_for, moderator, alice, make_user):
    newcomer = make_user("newcomer")
    client = admin_client_for(moderator)
    checkpoint = VotingPowerCheckpoint.objects.get(user=alice)
    data = {"action": "grant", "_selected_action": [checkpoint.pk]}
    response = client.post("/admin/governance_app/votingpowercheckpoint/", data)
    assert b"Grant voting power" in response.content
    response = client.post("/admin/governance_app/votingpowercheckpoint/",
                           {**data, "apply": "1", "power": 75_000, "reason": "Bought more"})
    assert response.status_code == 302
    assert voting_power_at(alice) == 75_000
    response = client.post("/admin/governance_app/votingpowercheckpoint/add/",
                           {"user": newcomer.pk, "power": 2_000, "reason": "Welcome"})
    assert response.status_code == 302, response.content
    assert voting_power_at(newcomer) == 2_000
    latest = VotingPowerCheckpoint.objects.filter(user=newcomer).get()
    assert latest.granted_by == moderator
    assert AuditEvent.objects.filter(action="voting_power.granted", actor=moderator).count() == 2


def test_regular_users_do_not_get_the_console(admin_client_for, make_user):
    staff = make_user("staff", is_staff=True)
    client = admin_client_for(staff)
    assert client.get("/admin/governance_app/proposal/").status_code == 403


def test_grant_voting_power_command(alice, moderator, capsys):
    call_command("grant_voting_power", "alice", "70000", "--actor", "mod", "--reason", "Top-up")
    assert voting_power_at(alice) == 70_000
    assert "alice has voting power 70000" in capsys.readouterr().out
    assert VotingPowerCheckpoint.objects.filter(user=alice).first().granted_by == moderator
    with pytest.raises(CommandError, match="No user named"):
        call_command("grant_voting_power", "nobody", "5", "--actor", "mod")
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("grant_voting_power", "alice", "5", "--actor", "ghost")
    with pytest.raises(CommandError, match="between 0"):
        call_command("grant_voting_power", "alice", "-5", "--actor", "mod")
    with pytest.raises(CommandError, match="--actor"):
        call_command("grant_voting_power", "alice", "5")


def test_set_parameter_command(db):
    call_command("set_parameter", "voting_period_seconds", "60", "--reason", "dev")
    assert get_parameter("voting_period_seconds") == 60
    with pytest.raises(CommandError, match="between 60"):
        call_command("set_parameter", "voting_period_seconds", "59", "--reason", "dev")


def test_metrics_count_proposals_by_type_and_state(make_proposal):
    make_proposal()
    body, _ = render_metrics()
    assert b'ai_registry_proposals{state="active",type="model_approval"} 1.0' in body


def test_a_proposal_cannot_be_saved_from_the_admin(client, moderator, passed):
    """A save would write back stale tallies or an execution time read before it committed."""
    proposal = passed()
    client.force_login(moderator)
    url = f"/admin/governance_app/proposal/{proposal.pk}/change/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"title": "changed"}).status_code == 403
    proposal.refresh_from_db()
    assert proposal.title != "changed"


def test_grant_reason_is_bounded(alice):
    with pytest.raises(InvalidInput) as refused:
        voting_power_grant(user=alice, power=5, reason="x" * 501)
    assert "reason" in refused.value.extra["fields"]


def test_admin_grant_input_errors_come_from_the_service_rules(admin_client_for, moderator,
                                                              make_user):
    newcomer = make_user("newcomer")
    client = admin_client_for(moderator)
    response = client.post("/admin/governance_app/votingpowercheckpoint/add/",
                           {"user": newcomer.pk, "power": 10**15 + 1, "reason": "x" * 501})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["power"] == ["Must be an integer between 0 and 1000000000000000."]
    assert errors["reason"] == ["Ensure this field has no more than 500 characters."]
    assert not VotingPowerCheckpoint.objects.filter(user=newcomer).exists()
    with pytest.raises(InvalidInput) as refused:
        voting_power_grant(user=newcomer, power=5, reason="\ud800")
    assert refused.value.extra["fields"] == {
        "reason": ["Lone surrogate characters are not allowed."]}


def test_admin_grant_messages_keep_the_username_as_written(admin_client_for, moderator, alice):
    """Django's admin capitalises a message's first letter: no message starts with a name."""
    checkpoint = VotingPowerCheckpoint.objects.get(user=alice)
    response = admin_client_for(moderator).post("/admin/governance_app/votingpowercheckpoint/", {
        "action": "grant", "_selected_action": [checkpoint.pk], "apply": "1", "power": "75000",
        "reason": "Bought more"}, follow=True)
    assert b"Granted 75000 voting power to alice." in response.content
    assert b"Alice" not in response.content
    assert voting_power_at(alice) == 75_000


@pytest.mark.parametrize("power", ["12x", "1_000", "-1", str(10**15 + 1)])
def test_admin_grant_action_reports_the_service_rules_all_at_once(admin_client_for, moderator,
                                                                 alice, power):
    """The grant action's form has no rules of its own: GrantInput's, every field at once."""
    checkpoint = VotingPowerCheckpoint.objects.get(user=alice)
    response = admin_client_for(moderator).post("/admin/governance_app/votingpowercheckpoint/", {
        "action": "grant", "_selected_action": [checkpoint.pk], "apply": "1", "power": power,
        "reason": "x" * 501})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "power": ["Must be an integer between 0 and 1000000000000000."],
        "reason": ["Ensure this field has no more than 500 characters."]}
    assert list(VotingPowerCheckpoint.objects.filter(user=alice)) == [checkpoint]


def test_admin_grant_reason_is_optional_as_in_the_service(admin_client_for, moderator, alice):
    checkpoint = VotingPowerCheckpoint.objects.get(user=alice)
    response = admin_client_for(moderator).post("/admin/governance_app/votingpowercheckpoint/", {
        "action": "grant", "_selected_action": [checkpoint.pk], "apply": "1", "power": "5"})
    assert response.status_code == 302
    assert voting_power_at(alice) == 5
