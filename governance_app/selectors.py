"""Reads: voting power at a moment in time, and who may vote on or cancel a proposal."""

from django.db.models import OuterRef, Prefetch, Subquery, Sum
from django.utils import timezone

from fees_app.models import FeeSchedule
from governance_app.models import (
    Proposal,
    ProposalState,
    ProposalType,
    Vote,
    VotingPowerCheckpoint,
)
from models_app.models import Registration
from registry_site.errors import Conflict, Forbidden
from registry_site.parameters import PARAMETER_SPECS, get_parameter
from registry_site.roles import is_moderator

CANCELABLE_STATES = {ProposalState.ACTIVE, ProposalState.PASSED}


def voting_power_at(user, when=None) -> int:
    """The user's power at ``when`` (now by default): their latest checkpoint not after it."""
    when = when or timezone.now()
    power = (
        VotingPowerCheckpoint.objects.filter(user=user, effective_from__lte=when)
        .order_by("-effective_from", "-id").values_list("power", flat=True).first()
    )
    return power or 0


def total_voting_power_at(when) -> int:
    """Sum over users of each one's latest checkpoint not after ``when``."""
    latest = (
        VotingPowerCheckpoint.objects.filter(user=OuterRef("user"), effective_from__lte=when)
        .order_by("-effective_from", "-id").values("pk")[:1]
    )
    return (
        VotingPowerCheckpoint.objects.filter(pk=Subquery(latest))
        .aggregate(total=Sum("power"))["total"] or 0
    )


def vote_refusal(*, proposal, voter, state: str, weight: int, has_voted: bool):
    """Why ``voter`` may not vote on ``proposal`` now (a domain error), or None if they may.

    One rule for the vote service (which raises it under the proposal's row lock) and for the
    proposal page (which shows it instead of the vote form).
    """
    if state != ProposalState.ACTIVE:
        return Conflict(f"Voting on proposal #{proposal.pk} is closed (it is {state}).",
                        code="voting_closed", state=state)
    if has_voted:
        return Conflict("You have already voted on this proposal.", code="already_voted")
    if weight <= 0:
        return Forbidden(
            "You had no voting power at this proposal's snapshot "
            f"({proposal.created_at:%Y-%m-%d %H:%M} UTC); power granted later does not count.",
            code="no_voting_power",
        )
    return None


def cancel_refusal(*, proposal, user, state: str, others_voted: bool):
    """Why ``user`` may not cancel ``proposal`` now, or None if they may.

    The proposer may cancel while no one else has voted; a moderator any time before
    execution. A failed or expired proposal is already over and keeps its outcome.
    """
    if state not in CANCELABLE_STATES:
        return Conflict(f"Proposal #{proposal.pk} is {state}; only an active or passed "
                        "proposal can be canceled.", code="not_cancelable", state=state)
    if is_moderator(user):
        return None
    if proposal.proposer_id != user.pk:
        # 409 like every other refused cancel (issue 4): the rule, not a role, refuses it.
        return Conflict("Only the proposer or a moderator may cancel a proposal.",
                        code="not_proposer")
    if others_voted:
        return Conflict("Others have voted on this proposal; only a moderator may cancel it now.",
                        code="others_voted")
    return None


def pending_registrations():
    """Registrations a model_approval proposal may name."""
    return Registration.objects.filter(status=Registration.Status.PENDING).order_by(
        "name", "version"
    )


def approved_registrations():
    """Registrations an emergency suspend_model proposal may name."""
    return Registration.objects.filter(status=Registration.Status.APPROVED).order_by(
        "name", "version"
    )


def proposals_for(user, now=None):
    """Proposals with their state as of ``now`` and, for a signed-in user, ``my_votes``."""
    queryset = Proposal.objects.with_state(now).select_related("proposer")
    if user.is_authenticated:
        queryset = queryset.prefetch_related(
            Prefetch("votes", queryset=Vote.objects.filter(voter=user), to_attr="my_votes")
        )
    return queryset


def payload_details(proposal) -> dict:
    """What the proposal page shows next to the payload: the things it would change, now."""
    payload = proposal.payload
    details = {}
    if payload.get("name") and payload.get("version"):
        details["registration"] = Registration.objects.select_related("owner").filter(
            name=payload["name"], version=payload["version"]
        ).first()
    if proposal.type == ProposalType.FEE_CHANGE:
        current = FeeSchedule.objects.active().filter(fee_type=payload["fee_type"]).first()
        details["current_schedule"] = current
        details["fee_rows"] = [
            (field, payload[field], getattr(current, field) if current else None)
            for field in ["method", "base_fee", "unit_fee", "min_fee", "max_fee", "step_size"]
        ]
    elif proposal.type == ProposalType.PARAMETER_CHANGE:
        details["spec"] = PARAMETER_SPECS.get(payload["parameter"])
        details["current_value"] = get_parameter(payload["parameter"])
    elif proposal.type == ProposalType.EMERGENCY:
        details["registrations_paused"] = bool(get_parameter("registrations_paused"))
    return details
