"""Reads: voting power at a moment in time, who may vote on or cancel a proposal, and the
model version a proposal is about."""

from urllib.parse import quote

from django.db import connection
from django.db.models import BooleanField, Exists, OuterRef, Prefetch, Q, Subquery, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.db.models.lookups import Exact
from django.urls import reverse
from django.utils import timezone

from fees_app.models import FeeSchedule
from governance_app.inputs import subject_status
from governance_app.models import (
    Proposal,
    ProposalState,
    ProposalType,
    Vote,
    VotingPowerCheckpoint,
    state_expression,
)
from models_app.models import Registration
from registry_site.compiled import MARKER_TIME, Compiled
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


def power_at_snapshot(user):
    """``user``'s (a user or their id) power at the snapshot of each proposal: an annotation
    for Proposal rows."""
    return Subquery(
        VotingPowerCheckpoint.objects.filter(user=user, effective_from__lte=OuterRef("created_at"))
        .order_by("-effective_from", "-id").values("power")[:1]
    )


def total_voting_power_at(when) -> int:
    """Sum over users of each one's latest checkpoint not after ``when``."""
    latest = (
        VotingPowerCheckpoint.objects.filter(user=OuterRef("user"), effective_from__lte=when)
        .order_by("-effective_from", "-id").values("pk")[:1]
    )
    current = VotingPowerCheckpoint.objects.filter(pk=Subquery(latest))
    if connection.vendor == "sqlite":
        # SQLite's SUM fails beyond 64 bits; the callers refuse such a total with a clear
        # error, so add in Python on the development database. PostgreSQL sums bigint exactly
        # as numeric.
        return sum(current.values_list("power", flat=True).iterator())
    return current.aggregate(total=Sum("power"))["total"] or 0


def grant_refusal(*, user, actor):
    """Why ``actor`` may not grant voting power to ``user``, or None (SPEC 10.2)."""
    if actor is not None and actor.pk == user.pk:
        return Forbidden("Nobody may grant voting power to themselves; another moderator or "
                         "an operator must do it.", code="self_grant")
    return None


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


# How many versions the new-proposal page lists for a search: a bounded list, never all.
SUBJECT_SEARCH_LIMIT = 20
MODEL_SUBJECT_TYPES = [ProposalType.MODEL_APPROVAL, ProposalType.EMERGENCY]


def _with_subject(queryset):
    """Annotate the model version a proposal's payload names (empty when it names none)."""
    return queryset.annotate(subject_name=KT("payload__name"),
                             subject_version=KT("payload__version"))


def _about(name, version) -> Q:
    """Proposals whose payload names this model version (values or outer references).

    Plain text comparisons of the payload's keys: a JSON lookup would encode the right-hand
    side as JSON, which a column reference is not.
    """
    return Q(Exact(KT("payload__name"), name), Exact(KT("payload__version"), version),
             type__in=MODEL_SUBJECT_TYPES)


def _open_subjects(now):
    """The versions under an open proposal (active, or passed and awaiting execution)."""
    # execution_deadline > now repeats part of both states so that the proposals are narrowed
    # first; the subquery is uncorrelated, so a catalog page evaluates it once.
    open_proposals = Proposal.objects.alias(_state=state_expression(now)).filter(
        _about(OuterRef("name"), OuterRef("version")), execution_deadline__gt=now,
        _state__in=[ProposalState.ACTIVE, ProposalState.PASSED])
    return Registration.objects.filter(Exists(open_proposals)).values("pk")


# Compiled once (registry_site.compiled): building and resolving the state's CASE expression
# cost the ORM a few milliseconds on every signed-in read and write that looks a version up.
_OPEN_SUBJECTS = Compiled(_open_subjects, now=MARKER_TIME)


def open_subject_visibility(user, now) -> Q:
    """Versions under an open proposal: visible, read-only, to every signed-in user (SPEC
    10.2), so that voters can open what they vote on and anyone can check what an execution
    would change. Registered with models_app."""
    return Q(pk__in=RawSQL(*_OPEN_SUBJECTS.sql(now=now)))


def subject_choices(*, user, status: str, search: str = "") -> list[Registration]:
    """At most SUBJECT_SEARCH_LIMIT versions in ``status`` that ``user`` may see whose name
    contains ``search``: the new-proposal page's search, bounded and visibility-checked."""
    queryset = Registration.objects.visible_to(user).filter(status=status)
    search = search.strip()
    if search:
        queryset = queryset.filter(name__icontains=search)
    return list(queryset.order_by("name", "version").only("name", "version", "status")
                [:SUBJECT_SEARCH_LIMIT])


def open_duplicate(*, type: str, payload: dict):
    """An active or passed proposal about the same model version, or None."""
    if subject_status(type, payload) is None:
        return None
    same = Proposal.objects.with_state().filter(
        _about(payload["name"], payload["version"]), type=type,
        state__in=[ProposalState.ACTIVE, ProposalState.PASSED])
    if type == ProposalType.EMERGENCY:
        same = same.filter(payload__action=payload["action"])
    return same.order_by("pk").first()


def subject_owner_id(proposal) -> int | None:
    """The owner of the model version the proposal is about, or None."""
    payload = proposal.payload
    if subject_status(proposal.type, payload) is None:
        return None
    return (Registration.objects.filter(name=payload["name"], version=payload["version"])
            .values_list("owner_id", flat=True).first())


def proposals_for(user, now=None):
    """Proposals with their state as of ``now`` and, for a signed-in user, ``my_votes``.

    The version a proposal names is looked up only among those ``user`` may see
    (``visible_to``): ``subject_known`` says whether they may, and ``subject_owner`` and
    ``subject_current_status`` are empty when they may not, so a proposal never tells its
    reader more about a version than the version's own page would. Moderators see every
    version, so to them a version that is not found no longer exists. All in one query.
    """
    subject = Registration.objects.visible_to(user).filter(
        name=OuterRef("subject_name"), version=OuterRef("subject_version"))
    known = (Value(True, output_field=BooleanField()) if is_moderator(user)
             else Exists(subject))
    queryset = (
        _with_subject(Proposal.objects.with_state(now)).select_related("proposer")
        .annotate(subject_known=known,
                  subject_owner=Subquery(subject.values("owner__username")[:1]),
                  subject_current_status=Subquery(subject.values("status")[:1]))
    )
    if user.is_authenticated:
        queryset = queryset.prefetch_related(
            Prefetch("votes", queryset=Vote.objects.filter(voter=user), to_attr="my_votes")
        )
    return queryset


def proposal_subject(proposal) -> dict | None:
    """The model version a proposal from ``proposals_for`` is about, as it is now.

    To a reader who may not see that version (``visible`` false) only what the payload says:
    its name and version and the status executing needs; no owner, status or link.
    """
    expected = subject_status(proposal.type, proposal.payload)
    if expected is None:
        return None
    name, version = proposal.payload["name"], proposal.payload["version"]
    subject = {"name": name, "version": version, "visible": proposal.subject_known,
               "owner": None, "status": None, "expected_status": expected, "url": None}
    if proposal.subject_known:
        subject.update(
            owner=proposal.subject_owner, status=proposal.subject_current_status,
            # The exact version the proposal names, not the model's newest.
            url=f"{reverse('models:model-page', args=[name])}?version={quote(version, safe='')}",
        )
    return subject


def proposal_warnings(proposal) -> list[dict]:
    """What voters must know: the owner's vote does not count; the target has changed."""
    subject = proposal_subject(proposal)
    if subject is None:
        return []
    label = f"{subject['name']} {subject['version']}"
    warnings = []
    if subject["owner"]:
        warnings.append({"code": "owner_vote_excluded", "detail": (
            f"{subject['owner']} owns {label}: the owner's vote does not count toward the "
            "tally or the quorum.")})
    elif not subject["visible"]:
        # The rule holds whoever the owner is; naming them is for those who may see it.
        warnings.append({"code": "owner_vote_excluded", "detail": (
            f"The owner of {label} may vote, but that vote does not count toward the tally "
            "or the quorum.")})
    open_states = {ProposalState.ACTIVE, ProposalState.PASSED}
    if (subject["visible"] and proposal.state in open_states
            and subject["status"] != subject["expected_status"]):
        now = f"it is {subject['status']}" if subject["status"] else "it no longer exists"
        warnings.append({"code": "target_changed", "detail": (
            f"{label} is no longer {subject['expected_status']} ({now}): executing this "
            "proposal will be refused.")})
    return warnings


def payload_details(proposal) -> dict:
    """What the proposal page shows next to the payload: the things it would change, now.
    (The model version it names is ``proposal_subject``'s, which checks who may see it.)"""
    payload = proposal.payload
    details = {}
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
