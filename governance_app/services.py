"""Every write on governance: voting power, proposals, votes, execution, cancel."""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from fees_app.models import FeeType
from fees_app.services import fee_charge, schedule_install
from governance_app.models import (
    EmergencyAction,
    Proposal,
    ProposalState,
    ProposalType,
    Vote,
    VotingPowerCheckpoint,
)
from governance_app.payloads import MAX_REASON_LENGTH, clean_payload
from governance_app.selectors import (
    cancel_refusal,
    total_voting_power_at,
    vote_refusal,
    voting_power_at,
)
from models_app.models import Registration, Source
from models_app.services import registration_transition
from registry_site.audit import audit_record
from registry_site.errors import Conflict, DomainError, Forbidden, InvalidInput
from registry_site.parameters import get_parameter
from registry_site.services import parameter_set

MAX_VOTING_POWER = 10**15
MAX_GRANT_REASON_LENGTH = VotingPowerCheckpoint._meta.get_field("reason").max_length
MAX_TITLE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
# A passed proposal always gets at least this long to be executed, even if the execution
# period parameter has been set shorter than the voting period.
MIN_EXECUTION_WINDOW = timedelta(hours=1)
TALLY_FIELDS = {
    Vote.Choice.FOR: "votes_for",
    Vote.Choice.AGAINST: "votes_against",
    Vote.Choice.ABSTAIN: "votes_abstain",
}


def voting_power_grant(*, user, power: int, actor=None, reason: str = "",
                       effective_from=None) -> VotingPowerCheckpoint:
    """Set a user's voting power from now on (a new checkpoint; earlier ones stay)."""
    if isinstance(power, bool) or not isinstance(power, int) or not 0 <= power <= MAX_VOTING_POWER:
        raise InvalidInput({"power": f"Must be an integer between 0 and {MAX_VOTING_POWER}."})
    reason = (reason or "").strip()
    if len(reason) > MAX_GRANT_REASON_LENGTH:
        raise InvalidInput({"reason": f"Must be at most {MAX_GRANT_REASON_LENGTH} characters."})
    with transaction.atomic():
        previous = voting_power_at(user)
        checkpoint = VotingPowerCheckpoint.objects.create(
            user=user, power=power, effective_from=effective_from or timezone.now(),
            granted_by=actor, reason=reason,
        )
        audit_record(action="voting_power.granted", actor=actor, target=checkpoint,
                     details={"user": user.get_username(), "previous": previous,
                              "power": power, "reason": reason})
    return checkpoint


def proposal_create(*, proposer, type: str, title: str, payload: dict, description: str = "",
                    now: datetime | None = None) -> Proposal:
    """Create a proposal and charge the proposal fee, all or nothing.

    Checks, in order: the input (400), the proposer's current voting power against
    ``min_voting_power`` (403), the proposal fee (402). The snapshot, voting end, execution
    deadline and quorum are copied now, so later parameter changes never alter it.
    ``now`` is the clock; request handlers never pass it (the demo seeds past proposals).
    """
    now = now or timezone.now()
    errors = {}
    title = (title or "").strip()
    if not title:
        errors["title"] = "This field is required."
    elif len(title) > MAX_TITLE_LENGTH:
        errors["title"] = f"Must be at most {MAX_TITLE_LENGTH} characters."
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        errors["description"] = f"Must be at most {MAX_DESCRIPTION_LENGTH} characters."
    try:
        payload = clean_payload(type, payload)
    except InvalidInput as exc:
        errors.update(exc.extra["fields"])
    if errors:
        raise InvalidInput(errors)

    power = voting_power_at(proposer, now)
    required = get_parameter("min_voting_power")
    if power < required:
        raise Forbidden(
            f"Creating a proposal needs voting power of at least {required}; you have {power}.",
            code="insufficient_voting_power", voting_power=power, required=required,
        )
    voting_ends_at = now + timedelta(seconds=get_parameter("voting_period_seconds"))
    execution_deadline = max(
        now + timedelta(seconds=get_parameter("execution_period_seconds")),
        voting_ends_at + MIN_EXECUTION_WINDOW,
    )
    quorum_bps = get_parameter("quorum_bps")
    with transaction.atomic():
        total = total_voting_power_at(now)
        proposal = Proposal.objects.create(
            type=type, title=title, description=description, payload=payload,
            proposer=proposer, created_at=now, voting_ends_at=voting_ends_at,
            execution_deadline=execution_deadline, total_power_at_snapshot=total,
            # ceil(quorum_bps * total / 10,000) in integers; total >= the proposer's power >= 1.
            quorum=-(-quorum_bps * total // 10_000),
        )
        fee = fee_charge(user=proposer, fee_type=FeeType.PROPOSAL, units=1)
        audit_record(
            action="proposal.created", actor=proposer, target=proposal,
            details={"type": type, "title": title, "payload": payload, "fee": fee.amount,
                     "quorum": proposal.quorum, "total_power": total,
                     "voting_ends_at": voting_ends_at, "execution_deadline": execution_deadline},
        )
    return proposal


def _lock(proposal_id: int, now: datetime) -> Proposal:
    """Lock the proposal row, then read it with its state as of ``now``.

    Two statements on purpose: the lock waits for any concurrent vote, execution or cancel
    to commit, and the second read then sees that committed row.
    """
    Proposal.objects.select_for_update().filter(pk=proposal_id).values_list("pk").get()
    return Proposal.objects.with_state(now).get(pk=proposal_id)


def vote_cast(*, proposal: Proposal, voter, choice: str, reason: str = "",
              now: datetime | None = None) -> Vote:
    """Cast ``voter``'s one vote, weighted by their power at the proposal's snapshot."""
    if choice not in TALLY_FIELDS:
        raise InvalidInput({"choice": f"Must be one of {', '.join(TALLY_FIELDS)}."})
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput({"reason": f"Must be at most {MAX_REASON_LENGTH} characters."})
    now = now or timezone.now()
    with transaction.atomic():
        # The row lock serializes votes on one proposal: the state check, the one-vote check
        # and the tally update see every earlier vote.
        locked = _lock(proposal.pk, now)
        weight = voting_power_at(voter, locked.created_at)
        has_voted = Vote.objects.filter(proposal=locked, voter=voter).exists()
        refusal = vote_refusal(proposal=locked, voter=voter, state=locked.state, weight=weight,
                               has_voted=has_voted)
        if refusal is not None:
            raise refusal
        try:
            with transaction.atomic():
                vote = Vote.objects.create(proposal=locked, voter=voter, choice=choice,
                                           weight=weight, reason=reason, created_at=now)
        except IntegrityError:
            # The unique constraint is the last word should any path skip the lock.
            raise Conflict("You have already voted on this proposal.",
                           code="already_voted") from None
        field = TALLY_FIELDS[choice]
        Proposal.objects.filter(pk=locked.pk).update(**{field: F(field) + weight})
        audit_record(action="proposal.voted", actor=voter, target=locked,
                     details={"choice": choice, "weight": weight, "reason": reason})
    return vote


def _registration_for(payload: dict, *, expected: str) -> Registration:
    registration = Registration.objects.filter(
        name=payload["name"], version=payload["version"]
    ).first()
    if registration is None:
        raise Conflict(f"{payload['name']} {payload['version']} no longer exists.",
                       code="effect_impossible")
    if registration.status != expected:
        raise Conflict(
            f"{registration} is no longer {expected} (it is {registration.status}).",
            code="effect_impossible",
        )
    return registration


def _switch_registrations(*, paused: bool, proposal: Proposal, reason: str) -> dict:
    if bool(get_parameter("registrations_paused")) == paused:
        state = "paused" if paused else "open"
        raise Conflict(f"Registrations are already {state}.", code="effect_impossible")
    parameter_set(name="registrations_paused", value=int(paused), actor=None,
                  proposal_id=proposal.pk, reason=reason)
    return {"parameter": "registrations_paused", "value": int(paused)}


def _apply_effect(proposal: Proposal) -> dict:
    """Make the proposal's change through the owning app's service; return what was done."""
    payload = proposal.payload
    reason = f"Proposal #{proposal.pk}: {payload['reason']}"
    if proposal.type == ProposalType.MODEL_APPROVAL:
        registration = _registration_for(payload, expected=Registration.Status.PENDING)
        registration_transition(
            registration=registration, to_status=Registration.Status.APPROVED, actor=None,
            source=Source.GOVERNANCE, reason=reason, proposal_id=proposal.pk,
        )
        return {"registration": str(registration), "status": registration.status}
    if proposal.type == ProposalType.FEE_CHANGE:
        schedule = schedule_install(
            fee_type=payload["fee_type"], method=payload["method"],
            base_fee=payload["base_fee"], unit_fee=payload["unit_fee"],
            min_fee=payload["min_fee"], max_fee=payload["max_fee"],
            step_size=payload["step_size"], actor=None, reason=reason, proposal_id=proposal.pk,
        )
        return {"fee_type": schedule.fee_type, "schedule_version": schedule.version}
    if proposal.type == ProposalType.PARAMETER_CHANGE:
        parameter_set(name=payload["parameter"], value=payload["value"], actor=None,
                      proposal_id=proposal.pk, reason=reason)
        return {"parameter": payload["parameter"], "value": payload["value"]}
    action = payload["action"]
    if action == EmergencyAction.SUSPEND_MODEL:
        registration = _registration_for(payload, expected=Registration.Status.APPROVED)
        registration_transition(
            registration=registration, to_status=Registration.Status.SUSPENDED, actor=None,
            source=Source.GOVERNANCE, reason=reason, proposal_id=proposal.pk,
        )
        return {"registration": str(registration), "status": registration.status}
    return _switch_registrations(
        paused=action == EmergencyAction.PAUSE_REGISTRATIONS, proposal=proposal, reason=reason
    )


def proposal_execute(*, proposal: Proposal, actor) -> Proposal:
    """Execute a passed proposal before its deadline: once, atomically with its effect.

    If the effect is no longer possible the whole transaction rolls back and Conflict says
    why; the proposal stays passed and nothing else changes.
    """
    now = timezone.now()
    with transaction.atomic():
        # The row lock makes execution exactly-once: a concurrent executor waits here and then
        # sees the proposal executed.
        locked = _lock(proposal.pk, now)
        if locked.state != ProposalState.PASSED:
            raise Conflict(
                f"Proposal #{locked.pk} is {locked.state}; only a passed proposal can be "
                "executed, before its execution deadline.", code="not_executable",
                state=locked.state,
            )
        try:
            result = _apply_effect(locked)
        except Conflict:
            raise
        except DomainError as exc:
            raise Conflict(f"The proposal's effect is no longer possible: {exc.detail}",
                           code="effect_impossible") from exc
        locked.executed_at = now
        locked.executed_by = actor
        locked.execution_result = result
        locked.save(update_fields=["executed_at", "executed_by", "execution_result"])
        audit_record(action="proposal.executed", actor=actor, target=locked,
                     details={"type": locked.type, "payload": locked.payload, "result": result})
    locked.state = ProposalState.EXECUTED
    return locked


def proposal_cancel(*, proposal: Proposal, actor, reason: str = "") -> Proposal:
    """Cancel: the proposer while no one else has voted, a moderator until execution."""
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput({"reason": f"Must be at most {MAX_REASON_LENGTH} characters."})
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(proposal.pk, now)
        others_voted = Vote.objects.filter(proposal=locked).exclude(voter=actor).exists()
        refusal = cancel_refusal(proposal=locked, user=actor, state=locked.state,
                                 others_voted=others_voted)
        if refusal is not None:
            raise refusal
        locked.canceled_at = now
        locked.canceled_by = actor
        locked.cancel_reason = reason
        locked.save(update_fields=["canceled_at", "canceled_by", "cancel_reason"])
        audit_record(action="proposal.canceled", actor=actor, target=locked,
                     details={"reason": reason, "previous_state": locked.state})
    locked.state = ProposalState.CANCELED
    return locked
