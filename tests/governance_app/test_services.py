"""The governance services: lifecycle, refusals, snapshot, quorum, effects, cancel."""

from datetime import timedelta

import pytest

from fees_app.models import FeeSchedule, LedgerEntry
from fees_app.services import account_for
from governance_app.models import Proposal, ProposalState, ProposalType, Vote
from governance_app.services import (
    proposal_cancel,
    proposal_create,
    proposal_execute,
    vote_cast,
    voting_power_grant,
)
from models_app.models import Registration, StatusChange
from models_app.services import registration_transition
from registry_site.audit import audit_verify
from registry_site.errors import Conflict, Forbidden, InsufficientFunds, InvalidInput, Unavailable
from registry_site.models import AuditEvent, ParameterChange
from registry_site.parameters import get_parameter
from registry_site.roles import is_moderator
from tests.governance_app.conftest import EXECUTION_PERIOD, START, VOTING_PERIOD

pytestmark = pytest.mark.django_db


def state_of(proposal) -> str:
    return Proposal.objects.with_state().get(pk=proposal.pk).state


def test_whole_lifecycle(make_proposal, steward, alice, bob, pending, clock):
    balance = account_for(steward).balance
    proposal = make_proposal()
    assert account_for(steward).balance == balance - 10_000
    assert proposal.created_at == START
    assert proposal.voting_ends_at == START + VOTING_PERIOD
    assert proposal.execution_deadline == START + EXECUTION_PERIOD
    assert proposal.total_power_at_snapshot == 101_000  # alice, bob and the steward
    assert proposal.quorum == 4_040
    assert state_of(proposal) == ProposalState.ACTIVE

    assert vote_cast(proposal=proposal, voter=alice, choice="for").weight == 60_000
    assert vote_cast(proposal=proposal, voter=bob, choice="against", reason="Too early").weight \
        == 40_000
    proposal.refresh_from_db()
    assert proposal.tally == {"for": 60_000, "against": 40_000, "abstain": 0}
    assert state_of(proposal) == ProposalState.ACTIVE

    clock.shift(VOTING_PERIOD)
    assert state_of(proposal) == ProposalState.PASSED
    executed = proposal_execute(proposal=proposal, actor=bob)
    assert executed.state == ProposalState.EXECUTED
    assert state_of(proposal) == ProposalState.EXECUTED

    pending.refresh_from_db()
    assert pending.status == Registration.Status.APPROVED
    change = StatusChange.objects.filter(registration=pending).first()
    assert (change.to_status, change.source, change.actor, change.proposal_id) == (
        "approved", "governance", None, proposal.pk)
    actions = list(AuditEvent.objects.filter(target_type="governance_app.proposal")
                   .values_list("action", flat=True).order_by("id"))
    assert actions == ["proposal.created", "proposal.voted", "proposal.voted",
                       "proposal.executed"]
    assert audit_verify()[1] is None


def test_active_until_voting_end_exactly(make_proposal, clock):
    proposal = make_proposal()
    clock.shift(VOTING_PERIOD - timedelta(microseconds=1))
    assert state_of(proposal) == ProposalState.ACTIVE
    clock.shift(timedelta(microseconds=1))
    assert state_of(proposal) == ProposalState.FAILED  # no votes: quorum not reached


def test_quorum_edges(holder, pending, make_registration, clock):
    proposer = holder("proposer", power=3_000, moderator=True)
    abstainer = holder("abstainer", power=1_000)
    holder("rest", power=96_000)
    payload = {"name": pending.name, "version": pending.version, "reason": "r"}
    at_quorum = proposal_create(proposer=proposer, type="model_approval", title="t",
                                payload=payload)
    assert at_quorum.quorum == 4_000
    vote_cast(proposal=at_quorum, voter=proposer, choice="for")
    vote_cast(proposal=at_quorum, voter=abstainer, choice="abstain")
    below = proposal_create(proposer=proposer, type="model_approval", title="t",
                            payload={**payload, "version": make_registration(version="2").version})
    vote_cast(proposal=below, voter=proposer, choice="for")
    clock.shift(VOTING_PERIOD)
    assert state_of(at_quorum) == ProposalState.PASSED  # for + abstain == quorum
    assert state_of(below) == ProposalState.FAILED  # 3,000 < 4,000


def test_quorum_rounds_up(holder, pending):
    proposer = holder("proposer", power=1_001, moderator=True)
    proposal = proposal_create(proposer=proposer, type="model_approval", title="t",
                               payload={"name": pending.name, "version": pending.version,
                                        "reason": "r"})
    assert proposal.quorum == 41  # ceil(400 * 1,001 / 10,000) = ceil(40.04)


def test_tie_fails(holder, pending, clock):
    yes = holder("yes", power=50_000, moderator=True)
    no = holder("no", power=50_000)
    proposal = proposal_create(proposer=yes, type="model_approval", title="t",
                               payload={"name": pending.name, "version": pending.version,
                                        "reason": "r"})
    vote_cast(proposal=proposal, voter=yes, choice="for")
    vote_cast(proposal=proposal, voter=no, choice="against")
    clock.shift(VOTING_PERIOD)
    assert state_of(proposal) == ProposalState.FAILED
    with pytest.raises(Conflict):
        proposal_execute(proposal=proposal, actor=yes)


def test_snapshot_power_granted_later_does_not_count(make_proposal, alice, holder, clock):
    late = holder("late", power=0)
    proposal = make_proposal()
    clock.shift(1)
    voting_power_grant(user=late, power=500_000, reason="after the snapshot")
    voting_power_grant(user=alice, power=1, reason="lowered after the snapshot")
    with pytest.raises(Forbidden) as refused:
        vote_cast(proposal=proposal, voter=late, choice="for")
    assert refused.value.code == "no_voting_power"
    assert vote_cast(proposal=proposal, voter=alice, choice="for").weight == 60_000
    proposal.refresh_from_db()
    assert proposal.total_power_at_snapshot == 61_000  # alice's 60,000 and the steward's 1,000
    assert proposal.tally["for"] == 60_000


def test_parameters_changed_later_do_not_change_a_running_proposal(make_proposal, clock,
                                                                   set_parameter):
    proposal = make_proposal()
    set_parameter("voting_period_seconds", 3_600)
    set_parameter("quorum_bps", 10_000)
    proposal.refresh_from_db()
    assert proposal.voting_ends_at == START + VOTING_PERIOD
    assert proposal.quorum == 2_440  # 4% of alice's 60,000 and the steward's 1,000
    short = make_proposal(type=ProposalType.PARAMETER_CHANGE,
                          payload={"parameter": "quorum_bps", "value": 500, "reason": "r"})
    assert short.voting_ends_at == START + timedelta(hours=1)
    assert short.quorum == 61_000


def test_execution_window_never_before_voting_end(make_proposal, set_parameter):
    set_parameter("voting_period_seconds", 2_592_000)
    set_parameter("execution_period_seconds", 7_200)
    proposal = make_proposal()
    assert proposal.execution_deadline == proposal.voting_ends_at + timedelta(hours=1)


# --- refusals: nothing created, nothing charged ----------------------------------------------

def assert_nothing_created(user, balance):
    assert Proposal.objects.count() == 0
    assert account_for(user).balance == balance
    assert not LedgerEntry.objects.filter(fee_type="proposal").exists()
    assert not AuditEvent.objects.filter(action="proposal.created").exists()


@pytest.mark.parametrize(("type", "payload", "field"), [
    ("model_approval", {"name": "sentiment-mini", "reason": "r"}, "payload.version"),
    ("model_approval", {"name": "nope", "version": "1.0.0", "reason": "r"}, "payload.version"),
    ("model_approval", {"name": "sentiment-mini", "version": "1.0.0"}, "payload.reason"),
    ("model_approval", {"name": "sentiment-mini", "version": "1.0.0", "reason": "r",
                        "extra": 1}, "payload.extra"),
    ("fee_change", {"fee_type": "nope", "method": "fixed", "base_fee": 1, "unit_fee": 0,
                    "min_fee": 0, "max_fee": 10, "reason": "r"}, "payload.fee_type"),
    ("fee_change", {"fee_type": "execution", "method": "fixed", "base_fee": 100, "unit_fee": 0,
                    "min_fee": 200, "max_fee": 100, "reason": "r"}, "payload.min_fee"),
    ("fee_change", {"fee_type": "execution", "method": "fixed", "base_fee": 500, "unit_fee": 0,
                    "min_fee": 0, "max_fee": 100, "reason": "r"}, "payload.base_fee"),
    ("fee_change", {"fee_type": "execution", "method": "fixed", "base_fee": "5", "unit_fee": 0,
                    "min_fee": 0, "max_fee": 100, "reason": "r"}, "payload.base_fee"),
    ("fee_change", {"fee_type": "execution", "method": "linear", "base_fee": 5,
                    "unit_fee": 1_000_001, "min_fee": 0, "max_fee": 100, "reason": "r"},
     "payload.unit_fee"),
    ("fee_change", {"fee_type": "execution", "method": "step", "base_fee": 5, "unit_fee": 1,
                    "min_fee": 0, "max_fee": 100, "step_size": 0, "reason": "r"},
     "payload.step_size"),
    ("parameter_change", {"parameter": "nope", "value": 1, "reason": "r"}, "payload.parameter"),
    ("parameter_change", {"parameter": "quorum_bps", "value": 10_001, "reason": "r"},
     "payload.value"),
    ("parameter_change", {"parameter": "quorum_bps", "value": True, "reason": "r"},
     "payload.value"),
    ("emergency", {"action": "explode", "reason": "r"}, "payload.action"),
    ("emergency", {"action": "suspend_model", "reason": "r"}, "payload.name"),
    ("emergency", {"action": "suspend_model", "name": "sentiment-mini", "version": "1.0.0",
                   "reason": "r"}, "payload.version"),  # pending, not approved
    ("emergency", {"action": "pause_registrations", "name": "sentiment-mini", "reason": "r"},
     "payload.name"),
    ("nope", {}, "type"),
    ("model_approval", [], "payload"),
])
def test_invalid_payload_is_refused_naming_the_field(alice, pending, type, payload, field):
    balance = account_for(alice).balance
    with pytest.raises(InvalidInput) as refused:
        proposal_create(proposer=alice, type=type, title="t", payload=payload)
    assert field in refused.value.extra["fields"]
    assert_nothing_created(alice, balance)


def test_missing_title_is_refused(alice, pending):
    with pytest.raises(InvalidInput) as refused:
        proposal_create(proposer=alice, type="model_approval", title="  ",
                        payload={"name": pending.name, "version": pending.version,
                                 "reason": "r"})
    assert "title" in refused.value.extra["fields"]


def test_not_pending_model_is_refused(steward, pending, moderator):
    # The steward (a moderator) may see the rejected version; to alice it does not exist.
    registration_transition(registration=pending, to_status="rejected", actor=moderator,
                            source="admin", reason="no")
    with pytest.raises(InvalidInput) as refused:
        proposal_create(proposer=steward, type="model_approval", title="t",
                        payload={"name": pending.name, "version": pending.version,
                                 "reason": "r"})
    assert "is rejected, not pending" in refused.value.extra["fields"]["payload.version"][0]


def test_too_little_voting_power_is_forbidden(holder, pending):
    weak = holder("weak", power=999)
    balance = account_for(weak).balance
    with pytest.raises(Forbidden) as refused:
        proposal_create(proposer=weak, type="model_approval", title="t",
                        payload={"name": pending.name, "version": pending.version,
                                 "reason": "r"})
    assert refused.value.extra == {"voting_power": 999, "required": 1000}
    assert_nothing_created(weak, balance)


def test_too_little_balance_for_the_fee(holder, pending):
    poor = holder("poor", power=5_000, balance=9_999, moderator=True)
    with pytest.raises(InsufficientFunds) as refused:
        proposal_create(proposer=poor, type="model_approval", title="t",
                        payload={"name": pending.name, "version": pending.version,
                                 "reason": "r"})
    assert refused.value.extra["needed"] == 10_000
    assert_nothing_created(poor, 9_999)


# --- votes -----------------------------------------------------------------------------------

def test_second_vote_is_a_conflict_and_changes_nothing(make_proposal, alice):
    proposal = make_proposal()
    vote_cast(proposal=proposal, voter=alice, choice="for")
    with pytest.raises(Conflict) as refused:
        vote_cast(proposal=proposal, voter=alice, choice="against")
    assert refused.value.code == "already_voted"
    proposal.refresh_from_db()
    assert proposal.tally == {"for": 60_000, "against": 0, "abstain": 0}
    assert Vote.objects.count() == 1


def test_vote_after_the_end_is_a_conflict(make_proposal, bob, clock):
    proposal = make_proposal()
    clock.shift(VOTING_PERIOD)
    with pytest.raises(Conflict) as refused:
        vote_cast(proposal=proposal, voter=bob, choice="for")
    assert refused.value.code == "voting_closed"
    assert Vote.objects.count() == 0


def test_vote_needs_a_valid_choice(make_proposal, alice):
    proposal = make_proposal()
    with pytest.raises(InvalidInput):
        vote_cast(proposal=proposal, voter=alice, choice="maybe")
    with pytest.raises(InvalidInput):
        vote_cast(proposal=proposal, voter=alice, choice="for", reason="x" * 2001)
    assert Vote.objects.count() == 0


def test_vote_on_canceled_proposal_is_a_conflict(make_proposal, steward, bob):
    proposal = make_proposal()
    proposal_cancel(proposal=proposal, actor=steward, reason="typo")
    with pytest.raises(Conflict):
        vote_cast(proposal=proposal, voter=bob, choice="for")


# --- execution -------------------------------------------------------------------------------

def test_execute_before_the_end_is_a_conflict(make_proposal, alice):
    proposal = make_proposal()
    vote_cast(proposal=proposal, voter=alice, choice="for")
    with pytest.raises(Conflict) as refused:
        proposal_execute(proposal=proposal, actor=alice)
    assert refused.value.extra["state"] == "active"


def test_double_execution_is_refused(passed, alice, bob, pending):
    proposal = passed()
    proposal_execute(proposal=proposal, actor=alice)
    with pytest.raises(Conflict) as refused:
        proposal_execute(proposal=proposal, actor=bob)
    assert refused.value.extra["state"] == "executed"
    assert StatusChange.objects.filter(registration=pending, to_status="approved").count() == 1
    proposal.refresh_from_db()
    assert proposal.executed_by == alice


def test_expiry(passed, alice, clock, pending):
    proposal = passed()
    clock.shift(EXECUTION_PERIOD - VOTING_PERIOD - timedelta(microseconds=1))
    assert state_of(proposal) == ProposalState.PASSED
    clock.shift(timedelta(microseconds=1))
    assert state_of(proposal) == ProposalState.EXPIRED
    with pytest.raises(Conflict):
        proposal_execute(proposal=proposal, actor=alice)
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_effect_no_longer_possible_changes_nothing(passed, alice, pending, moderator):
    proposal = passed()
    registration_transition(registration=pending, to_status="rejected", actor=moderator,
                            source="admin", reason="broken")
    events = AuditEvent.objects.count()
    with pytest.raises(Conflict) as refused:
        proposal_execute(proposal=proposal, actor=alice)
    assert "no longer pending" in refused.value.detail
    assert state_of(proposal) == ProposalState.PASSED
    proposal.refresh_from_db()
    assert proposal.executed_at is None
    pending.refresh_from_db()
    assert pending.status == "rejected"
    assert AuditEvent.objects.count() == events


def test_fee_change_installs_a_new_schedule_version(passed, alice):
    payload = {"fee_type": "execution", "method": "step", "base_fee": 50, "unit_fee": 10,
               "min_fee": 10, "max_fee": 10_000, "step_size": 100, "reason": "Cheaper runs"}
    proposal = passed(type=ProposalType.FEE_CHANGE, payload=payload)
    old = FeeSchedule.objects.active().get(fee_type="execution")
    executed = proposal_execute(proposal=proposal, actor=alice)
    new = FeeSchedule.objects.active().get(fee_type="execution")
    assert new.version == old.version + 1
    assert (new.method, new.base_fee, new.unit_fee, new.min_fee, new.max_fee, new.step_size) == (
        "step", 50, 10, 10, 10_000, 100)
    assert new.proposal_id == proposal.pk
    assert executed.execution_result == {"fee_type": "execution",
                                         "schedule_version": new.version}


def test_fee_change_defaults_step_size(alice, pending):
    proposal = proposal_create(proposer=alice, type="fee_change", title="t", payload={
        "fee_type": "execution", "method": "fixed", "base_fee": 50, "unit_fee": 0,
        "min_fee": 0, "max_fee": 100, "reason": "r"})
    assert proposal.payload["step_size"] == 1000


def test_fee_change_payload_names_every_broken_term_at_once(alice, pending):
    with pytest.raises(InvalidInput) as refused:
        proposal_create(proposer=alice, type="fee_change", title="t", payload={
            "fee_type": "execution", "method": "step", "base_fee": 5, "unit_fee": 2_000_000,
            "min_fee": 10, "max_fee": 1, "step_size": 0, "reason": "r"})
    assert set(refused.value.extra["fields"]) == {
        "payload.unit_fee", "payload.step_size", "payload.min_fee"}
    assert not Proposal.objects.exists()


def test_fee_change_payload_checks_the_bounds_of_terms_that_parsed(alice, pending):
    with pytest.raises(InvalidInput) as refused:
        proposal_create(proposer=alice, type="fee_change", title="t", payload={
            "fee_type": "execution", "method": "quadratic", "base_fee": "5", "unit_fee": 1,
            "min_fee": 10, "max_fee": 1, "reason": "r"})
    assert refused.value.extra["fields"] == {
        "payload.method": ["Must be one of fixed, linear, logarithmic, step."],
        "payload.base_fee": ["A valid integer is required."],
        "payload.min_fee": ["Must not exceed max_fee."]}
    assert not Proposal.objects.exists()


def test_parameter_change_goes_through_the_parameter_service(
        passed, alice, django_capture_on_commit_callbacks):
    proposal = passed(type=ProposalType.PARAMETER_CHANGE,
                      payload={"parameter": "max_model_size", "value": 209_715_200,
                               "reason": "Bigger models"})
    with django_capture_on_commit_callbacks(execute=True):
        proposal_execute(proposal=proposal, actor=alice)
    assert get_parameter("max_model_size") == 209_715_200
    change = ParameterChange.objects.get(parameter__name="max_model_size")
    assert (change.old_value, change.new_value, change.proposal_id) == (
        104_857_600, 209_715_200, proposal.pk)


def test_emergency_suspend_model(passed, alice, make_registration, moderator):
    model = make_registration("vision-x", "2.0.0")
    registration_transition(registration=model, to_status="approved", actor=moderator,
                            source="admin", reason="ok")
    proposal = passed(type=ProposalType.EMERGENCY, payload={
        "action": "suspend_model", "name": "vision-x", "version": "2.0.0",
        "reason": "Leaks data"})
    proposal_execute(proposal=proposal, actor=alice)
    model.refresh_from_db()
    assert model.status == "suspended"
    change = StatusChange.objects.filter(registration=model).first()
    assert (change.source, change.proposal_id) == ("governance", proposal.pk)


def test_emergency_pause_and_resume_registrations(passed, alice, make_registration,
                                                  django_capture_on_commit_callbacks):
    pause = passed(type=ProposalType.EMERGENCY,
                   payload={"action": "pause_registrations", "reason": "Under attack"})
    # The parameter cache is cleared on commit; the test transaction never commits.
    with django_capture_on_commit_callbacks(execute=True):
        proposal_execute(proposal=pause, actor=alice)
    assert get_parameter("registrations_paused") == 1
    with pytest.raises(Unavailable):
        make_registration("another-model", "1.0.0")
    assert not Registration.objects.filter(name="another-model").exists()

    pause_again = passed(type=ProposalType.EMERGENCY,
                         payload={"action": "pause_registrations", "reason": "Again"})
    with pytest.raises(Conflict) as refused:
        proposal_execute(proposal=pause_again, actor=alice)
    assert "already paused" in refused.value.detail

    resume = passed(type=ProposalType.EMERGENCY,
                    payload={"action": "resume_registrations", "reason": "Fixed"})
    with django_capture_on_commit_callbacks(execute=True):
        proposal_execute(proposal=resume, actor=alice)
    assert get_parameter("registrations_paused") == 0
    assert make_registration("another-model", "1.0.0").status == "pending"


# --- cancel ----------------------------------------------------------------------------------

def test_proposer_cancels_while_only_they_voted(make_proposal, alice):
    assert not is_moderator(alice)  # the proposer rule, not the moderator's
    proposal = make_proposal(type=ProposalType.PARAMETER_CHANGE,
                             payload={"parameter": "quorum_bps", "value": 500, "reason": "r"})
    vote_cast(proposal=proposal, voter=alice, choice="for")
    canceled = proposal_cancel(proposal=proposal, actor=alice, reason="Wrong version")
    assert canceled.state == ProposalState.CANCELED
    assert state_of(proposal) == ProposalState.CANCELED
    proposal.refresh_from_db()
    assert (proposal.canceled_by, proposal.cancel_reason) == (alice, "Wrong version")


def test_proposer_may_not_cancel_once_others_voted(make_proposal, alice, bob):
    assert not is_moderator(bob)
    proposal = make_proposal(proposer=bob, type=ProposalType.PARAMETER_CHANGE,
                             payload={"parameter": "quorum_bps", "value": 500, "reason": "r"})
    vote_cast(proposal=proposal, voter=alice, choice="against")
    with pytest.raises(Conflict) as refused:
        proposal_cancel(proposal=proposal, actor=bob, reason="Losing")
    assert refused.value.code == "others_voted"
    assert state_of(proposal) == ProposalState.ACTIVE


def test_stranger_may_not_cancel(make_proposal, bob):
    assert not is_moderator(bob)
    for proposal in [make_proposal(), make_proposal(type=ProposalType.PARAMETER_CHANGE, payload={
            "parameter": "quorum_bps", "value": 500, "reason": "r"})]:
        with pytest.raises(Conflict) as refused:
            proposal_cancel(proposal=proposal, actor=bob, reason="Mine now")
        assert refused.value.code == "not_proposer"
        assert state_of(proposal) == ProposalState.ACTIVE


def test_moderator_cancels_any_time_before_execution(passed, bob, moderator, alice):
    proposal = passed()
    assert state_of(proposal) == ProposalState.PASSED
    proposal_cancel(proposal=proposal, actor=moderator, reason="Fraud")
    assert state_of(proposal) == ProposalState.CANCELED
    with pytest.raises(Conflict):
        proposal_execute(proposal=proposal, actor=alice)

    executed = passed()
    proposal_execute(proposal=executed, actor=alice)
    with pytest.raises(Conflict) as refused:
        proposal_cancel(proposal=executed, actor=moderator, reason="Too late")
    assert refused.value.code == "not_cancelable"
    assert state_of(executed) == ProposalState.EXECUTED


def test_cancel_reason_is_optional_bounded_and_cancel_happens_once(make_proposal, alice,
                                                                  moderator):
    proposal = make_proposal(type=ProposalType.PARAMETER_CHANGE,
                             payload={"parameter": "quorum_bps", "value": 500, "reason": "r"})
    with pytest.raises(InvalidInput):
        proposal_cancel(proposal=proposal, actor=alice, reason="x" * 2001)
    proposal_cancel(proposal=proposal, actor=alice)
    with pytest.raises(Conflict):
        proposal_cancel(proposal=proposal, actor=moderator, reason="again")


def test_failed_proposal_keeps_its_outcome(make_proposal, moderator, clock):
    proposal = make_proposal()
    clock.shift(VOTING_PERIOD)
    with pytest.raises(Conflict):
        proposal_cancel(proposal=proposal, actor=moderator, reason="cleanup")
    assert state_of(proposal) == ProposalState.FAILED


def test_state_filter_is_sql(passed, make_proposal, alice, moderator, clock):
    change = {"type": ProposalType.PARAMETER_CHANGE,
              "payload": {"parameter": "quorum_bps", "value": 500, "reason": "r"}}
    executed = passed(**change)
    proposal_execute(proposal=executed, actor=alice)
    failed = make_proposal(**change)
    canceled = make_proposal(**change)
    proposal_cancel(proposal=canceled, actor=moderator, reason="x")
    clock.shift(VOTING_PERIOD)
    active = make_proposal(**change)
    assert list(Proposal.objects.in_state("executed")) == [executed]
    assert list(Proposal.objects.in_state("failed")) == [failed]
    assert list(Proposal.objects.in_state("canceled")) == [canceled]
    assert list(Proposal.objects.in_state("active")) == [active]
