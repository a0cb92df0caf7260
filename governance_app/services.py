"""Every write on governance: voting power, proposals, votes, execution, cancel."""

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from fees_app.calculator import MAX_STORED_INT
from fees_app.models import FeeType
from fees_app.services import fee_charge, schedule_install
from governance_app.inputs import (
    SUBJECT_STATUS,
    CancelInput,
    GrantInput,
    ProposalCreateInput,
    VoteInput,
)
from governance_app.models import (
    EmergencyAction,
    Proposal,
    ProposalState,
    ProposalType,
    Vote,
    VotingPowerCheckpoint,
)
from governance_app.selectors import (
    MODEL_SUBJECT_TYPES,
    cancel_refusal,
    grant_refusal,
    open_duplicate,
    power_at_snapshot,
    subject_owner_id,
    total_voting_power_at,
    vote_refusal,
    voting_power_at,
)
from models_app.models import Registration, Source
from models_app.read_cache import model_changed
from models_app.services import registration_transition
from registry_site.audit import audit_record
from registry_site.compiled import MARKER_IDS, MARKER_TIME, Compiled, statement_cursor
from registry_site.errors import Conflict, DomainError, Forbidden, NotFound
from registry_site.inputs import validated
from registry_site.parameters import get_parameter
from registry_site.services import parameter_set

# Snapshot totals, quorums and tallies are 64-bit columns.
MAX_TOTAL_VOTING_POWER = 2**63 - 1
# A passed proposal always gets at least this long to be executed, even if the execution
# period parameter has been set shorter than the voting period.
MIN_EXECUTION_WINDOW = timedelta(hours=1)
TALLY_FIELDS = {
    Vote.Choice.FOR: "votes_for",
    Vote.Choice.AGAINST: "votes_against",
    Vote.Choice.ABSTAIN: "votes_abstain",
}
# pg_advisory_xact_lock key shared by grants and proposal creation (any fixed 64-bit number).
SNAPSHOT_LOCK_KEY = 0x676F765F736E6170


def _snapshot_lock() -> None:
    """Serialize grants and proposal creation until the current transaction ends.

    A proposal's snapshot must see every checkpoint effective at or before it. Without this
    lock a grant whose ``effective_from`` was read before the proposal's clock but which
    committed after the proposal summed the total would count in votes but not in the total
    (a vote of 1,000,000 on a total of 1,000). Both writers read the clock after taking it.
    On SQLite, IMMEDIATE transactions already serialize writers.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SNAPSHOT_LOCK_KEY])


def _newest_snapshot():
    return Proposal.objects.order_by("-created_at").values_list("created_at", flat=True).first()


def voting_power_grant_check(*, user, actor, power=None) -> None:
    """Refuse (and audit) a grant ``actor`` may not make; the admin's form calls it too."""
    refusal = grant_refusal(user=user, actor=actor)
    if refusal is not None:
        audit_record(action="voting_power.grant_refused", actor=actor, target=user,
                     details={"user": user.get_username(), "power": power,
                              "code": refusal.code})
        raise refusal


def voting_power_grant(*, user, power: int, actor=None, reason: str = "",
                       effective_from=None) -> VotingPowerCheckpoint:
    """Set a user's voting power from now on (a new checkpoint; earlier ones stay).

    ``actor`` is who grants; None only for the registry itself (the demo seed). Nobody
    grants power to themselves: refused with 403 ``self_grant``, audited, nothing written.
    A backdated ``effective_from`` may not reach back to a proposal's snapshot, which would
    change the weight of votes already counted.
    """
    voting_power_grant_check(user=user, actor=actor, power=power)
    data = validated(GrantInput, {"power": power, "reason": reason})
    power, reason = data["power"], data["reason"]
    with transaction.atomic():
        _snapshot_lock()
        now = timezone.now()
        newest = _newest_snapshot()
        if effective_from is None:
            # Strictly after every snapshot, even with a clock behind another worker's.
            effective_from = max(now, newest + timedelta(microseconds=1)) if newest else now
        elif newest is not None and effective_from <= newest:
            raise Conflict("Power cannot take effect at or before an existing proposal's "
                           f"snapshot ({newest:%Y-%m-%d %H:%M:%S} UTC).", code="snapshot_taken")
        previous = voting_power_at(user, effective_from)
        total = total_voting_power_at(effective_from) - previous + power
        if total > MAX_TOTAL_VOTING_POWER:
            raise Conflict(f"The total voting power would exceed {MAX_TOTAL_VOTING_POWER:,}.",
                           code="voting_power_overflow")
        checkpoint = VotingPowerCheckpoint.objects.create(
            user=user, power=power, effective_from=effective_from, granted_by=actor,
            reason=reason,
        )
        audit_record(action="voting_power.granted", actor=actor, target=checkpoint,
                     details={"user": user.get_username(), "previous": previous,
                              "power": power, "reason": reason})
    return checkpoint


def proposal_create(*, proposer, type=None, title=None, payload=None, description="",
                    now: datetime | None = None) -> Proposal:
    """Create a proposal and charge the proposal fee, all or nothing.

    Checks, in order: the proposer's current voting power against ``min_voting_power``
    (403), so that nothing about the payload answers a user who may not propose; the input
    (400, every field at once, model versions only among those the proposer may see); an
    open proposal about the same version (409); the proposal fee (402). The snapshot, voting
    end, execution deadline and quorum are copied now, so later parameter changes never
    alter it. ``now`` is the clock; request handlers never pass it (the demo seeds past
    proposals).
    """
    with transaction.atomic():
        _snapshot_lock()
        now = now or timezone.now()
        power = voting_power_at(proposer, now)
        required = get_parameter("min_voting_power")
        if power < required:
            raise Forbidden(
                f"Creating a proposal needs voting power of at least {required}; you have "
                f"{power}.", code="insufficient_voting_power", voting_power=power,
                required=required,
            )
        data = validated(ProposalCreateInput, {
            "type": type, "title": title, "description": description, "payload": payload,
        }, proposer=proposer)
        type, payload = data["type"], data["payload"]
        duplicate = open_duplicate(type=type, payload=payload)
        if duplicate is not None:
            raise Conflict(f"Proposal #{duplicate.pk} about {payload['name']} "
                           f"{payload['version']} is still open.", code="duplicate_proposal",
                           proposal_id=duplicate.pk)
        total = total_voting_power_at(now)
        if total > MAX_TOTAL_VOTING_POWER:
            raise Conflict(f"The total voting power ({total:,}) exceeds {MAX_TOTAL_VOTING_POWER:,}"
                           "; no snapshot can hold it.", code="voting_power_overflow")
        voting_ends_at = now + timedelta(seconds=get_parameter("voting_period_seconds"))
        execution_deadline = max(
            now + timedelta(seconds=get_parameter("execution_period_seconds")),
            voting_ends_at + MIN_EXECUTION_WINDOW,
        )
        proposal = Proposal.objects.create(
            type=type, title=data["title"], description=data["description"], payload=payload,
            proposer=proposer, created_at=now, voting_ends_at=voting_ends_at,
            execution_deadline=execution_deadline, total_power_at_snapshot=total,
            # ceil(quorum_bps * total / 10,000) in integers; total >= the proposer's power >= 1.
            quorum=-(-get_parameter("quorum_bps") * total // 10_000),
        )
        fee = fee_charge(user=proposer, fee_type=FeeType.PROPOSAL, units=1)
        if type in MODEL_SUBJECT_TYPES and payload.get("name"):
            # Signed-in callers now see the version it is about (open_subject_visibility):
            # the model's cached members' view moves on with the commit (models_app.read_cache).
            model_changed(payload["name"], detail_only=True)
        audit_record(
            action="proposal.created", actor=proposer, target=proposal,
            details={"type": type, "title": data["title"], "payload": payload,
                     "fee": fee.amount, "quorum": proposal.quorum, "total_power": total,
                     "voting_ends_at": voting_ends_at, "execution_deadline": execution_deadline},
        )
    return proposal


def _lock(proposal_id: int, now: datetime | None) -> Proposal:
    """Lock the proposal row, then read it with its state as of ``now``.

    Two statements on purpose: the lock waits for any concurrent vote, execution or cancel
    to commit, and the second read then sees that committed row. The clock is read after
    the lock (unless the caller fixed it): a request that waited for the lock past the
    voting end must see the proposal closed.
    """
    Proposal.objects.select_for_update().filter(pk=proposal_id).values_list("pk").get()
    now = now or timezone.now()
    locked = Proposal.objects.with_state(now).get(pk=proposal_id)
    locked.locked_at = now
    return locked


def vote_cast(*, proposal: Proposal, voter, choice=None, reason="",
              now: datetime | None = None) -> Vote:
    """Cast ``voter``'s one vote, weighted by their power at the proposal's snapshot.

    The owner of the model the proposal is about votes like anyone, but their vote is
    stored with ``counted`` False and moves neither the tally nor the quorum.
    """
    data = validated(VoteInput, {"choice": choice, "reason": reason})
    choice, reason = data["choice"], data["reason"]
    if not 0 < proposal.pk <= MAX_STORED_INT:
        raise NotFound("No such proposal.")
    with transaction.atomic():
        # A key-share lock: voters of one proposal hold it together, while an execution or a
        # cancel (FOR UPDATE, in _lock) waits for every vote in flight and then counts it, and
        # a vote that waited for one of them sees the proposal executed or canceled. The clock
        # is read after the lock, as in _lock.
        _key_share_lock(proposal.pk)
        now = now or timezone.now()
        locked = _proposal_for_vote(proposal_id=proposal.pk, voter_id=voter.pk, now=now)
        weight = locked.weight or 0
        # The one-vote rule is the insert below (a unique index), not a read before it.
        refusal = vote_refusal(proposal=locked, voter=voter, state=locked.state, weight=weight,
                               has_voted=False)
        if refusal is not None:
            raise refusal
        counted = subject_owner_id(locked) != voter.pk
        vote = _insert_vote(proposal=locked, voter=voter, choice=choice, weight=weight,
                            counted=counted, reason=reason, created_at=now)
        if vote is None:
            raise Conflict("You have already voted on this proposal.", code="already_voted")
        audit_record(action="proposal.voted", actor=voter, target=locked,
                     details={"choice": choice, "weight": weight, "counted": counted,
                              "reason": reason})
        if counted:
            # Last, so the row lock this update takes (voters of one proposal queue for it)
            # is held only from here to the commit.
            _count_vote(proposal_id=locked.pk, field=TALLY_FIELDS[choice], weight=weight)
    return vote


def _count_vote(*, proposal_id: int, field: str, weight: int) -> None:
    column = Proposal._meta.get_field(field).column
    with statement_cursor() as cursor:
        cursor.execute(f"UPDATE {Proposal._meta.db_table} SET {column} = {column} + %s "
                       "WHERE id = %s", [weight, proposal_id])


# The proposal with its state and the voter's weight at its snapshot, compiled once
# (registry_site.compiled): the ORM's build of it cost more CPU than the rest of a vote's reads.
_FOR_VOTE = Compiled(
    lambda proposal_id, voter_id, now: Proposal.objects.with_state(now)
    .annotate(weight=power_at_snapshot(voter_id)).filter(pk=proposal_id),
    proposal_id=MARKER_IDS[0], voter_id=MARKER_IDS[1], now=MARKER_TIME)


def _proposal_for_vote(*, proposal_id: int, voter_id: int, now) -> Proposal:
    rows = _FOR_VOTE.rows(proposal_id=proposal_id, voter_id=voter_id, now=now)
    if not rows:
        raise NotFound("No such proposal.")
    return rows[0]


def _key_share_lock(proposal_id: int) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite: IMMEDIATE transactions already serialize writers
    with statement_cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {Proposal._meta.db_table} WHERE id = %s FOR KEY SHARE",
                       [proposal_id])


def _insert_vote(*, proposal, voter, choice, weight, counted, reason, created_at) -> Vote | None:
    """Insert the vote, or nothing if this voter has voted on the proposal (None then).

    An upsert on the one-vote index rather than an insert under a savepoint: a second vote
    by the same voter at the same moment waits for the first to commit and inserts nothing.
    """
    vote = Vote(proposal=proposal, voter=voter, choice=choice, weight=weight, counted=counted,
                reason=reason, created_at=created_at)
    with statement_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Vote._meta.db_table} "
            "(proposal_id, voter_id, choice, weight, counted, reason, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (proposal_id, voter_id) DO NOTHING RETURNING id",
            [proposal.pk, voter.pk, choice, weight, counted, reason,
             connection.ops.adapt_datetimefield_value(created_at)],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    vote.pk = row[0]
    vote._state.adding = False
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
        registration = _registration_for(payload, expected=SUBJECT_STATUS[proposal.type])
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
        registration = _registration_for(payload, expected=SUBJECT_STATUS[action])
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
    with transaction.atomic():
        # The row lock makes execution exactly-once: a concurrent executor waits here and then
        # sees the proposal executed.
        locked = _lock(proposal.pk, None)
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
        locked.executed_at = locked.locked_at
        locked.executed_by = actor
        locked.execution_result = result
        locked.save(update_fields=["executed_at", "executed_by", "execution_result"])
        audit_record(action="proposal.executed", actor=actor, target=locked,
                     details={"type": locked.type, "payload": locked.payload, "result": result})
    locked.state = ProposalState.EXECUTED
    return locked


def proposal_cancel(*, proposal: Proposal, actor, reason="") -> Proposal:
    """Cancel: the proposer while no one else has voted, a moderator until execution."""
    reason = validated(CancelInput, {"reason": reason})["reason"]
    with transaction.atomic():
        locked = _lock(proposal.pk, None)
        others_voted = Vote.objects.filter(proposal=locked).exclude(voter=actor).exists()
        refusal = cancel_refusal(proposal=locked, user=actor, state=locked.state,
                                 others_voted=others_voted)
        if refusal is not None:
            raise refusal
        locked.canceled_at = locked.locked_at
        locked.canceled_by = actor
        locked.cancel_reason = reason
        locked.save(update_fields=["canceled_at", "canceled_by", "cancel_reason"])
        audit_record(action="proposal.canceled", actor=actor, target=locked,
                     details={"reason": reason, "previous_state": locked.state})
    locked.state = ProposalState.CANCELED
    return locked
