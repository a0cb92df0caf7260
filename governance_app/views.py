"""Pages: the proposals list, a new proposal, and a proposal with its vote form."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from fees_app.models import FeeType
from fees_app.services import account_for, fee_quote
from governance_app.filtersets import ProposalFilterSet
from governance_app.forms import (
    PROPOSAL_FORMS,
    VoteForm,
    add_service_errors,
)
from governance_app.models import Proposal, ProposalState, ProposalType, Vote
from governance_app.selectors import (
    SUBJECT_SEARCH_LIMIT,
    cancel_refusal,
    payload_details,
    proposal_subject,
    proposal_warnings,
    proposals_for,
    subject_choices,
    vote_refusal,
    voting_power_at,
)
from governance_app.services import proposal_cancel, proposal_create, proposal_execute, vote_cast
from registry_site.errors import DomainError, InvalidInput, audit_web_refusal
from registry_site.pagination import page_number
from registry_site.parameters import get_parameter

PAGE_SIZE = 25


def proposal_list(request):
    """All proposals, newest first, filtered by state and type; never counts the table."""
    filterset = ProposalFilterSet(
        request.GET or None, queryset=proposals_for(request.user, timezone.now())
    )
    page = page_number(request)
    rows = list(filterset.qs.order_by("-created_at", "-id")
                [(page - 1) * PAGE_SIZE: page * PAGE_SIZE + 1])
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "governance_app/proposal_list.html", {
        "filter": filterset,
        "proposals": rows[:PAGE_SIZE],
        "page": page,
        "has_next": len(rows) > PAGE_SIZE,
        "query": query.urlencode(),
    })


@login_required
def proposal_new(request):
    """Step one: choose a type; step two: that type's form.

    Model proposals name a version by name and version, found with a search that lists at
    most SUBJECT_SEARCH_LIMIT versions the user may see (never a list of every version).
    """
    proposal_type = request.POST.get("type") or request.GET.get("type")
    form_class = PROPOSAL_FORMS.get(proposal_type)
    _, fee = fee_quote(fee_type=FeeType.PROPOSAL, units=1)
    context = {
        "types": ProposalType.choices,
        "voting_power": voting_power_at(request.user),
        "min_voting_power": get_parameter("min_voting_power"),
        "balance": account_for(request.user).balance,
        "fee": fee.amount,
        "voting_would_end": timezone.now()
        + timedelta(seconds=get_parameter("voting_period_seconds")),
    }
    if form_class is None:
        return render(request, "governance_app/proposal_choose.html", context)
    initial = {field: request.GET[field] for field in ("name", "version")
               if field in request.GET}
    form = form_class(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            proposal = proposal_create(
                proposer=request.user, type=form.proposal_type,
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"], payload=form.payload(),
            )
        except InvalidInput as exc:
            add_service_errors(form, exc)
        except DomainError as exc:
            audit_web_refusal(request, exc)
            form.add_error(None, exc.detail)
        else:
            messages.success(request, f"Proposal #{proposal.pk} created; voting is open until "
                                      f"{proposal.voting_ends_at:%Y-%m-%d %H:%M} UTC.")
            return redirect("governance:proposal-detail", pk=proposal.pk)
    search = request.GET.get("q", "").replace("\x00", "")[:100]
    context.update(form=form, proposal_type=form.proposal_type,
                   type_label=ProposalType(form.proposal_type).label, search=search,
                   search_limit=SUBJECT_SEARCH_LIMIT, search_status=form.search_status,
                   choices=subject_choices(user=request.user, status=form.search_status,
                                           search=search) if form.search_status else [])
    return render(request, "governance_app/proposal_new.html", context)


def proposal_detail(request, pk: int):
    """The proposal: payload, tallies, quorum, time left, and the vote form (POST votes)."""
    now = timezone.now()
    proposal = get_object_or_404(
        proposals_for(request.user, now).select_related("executed_by", "canceled_by"), pk=pk,
    )
    user = request.user
    vote_form = VoteForm(request.POST or None)
    if request.method == "POST":
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if vote_form.is_valid():
            try:
                vote = vote_cast(proposal=proposal, voter=user, **vote_form.cleaned_data)
            except InvalidInput as exc:
                add_service_errors(vote_form, exc)
            except DomainError as exc:
                audit_web_refusal(request, exc)
                messages.error(request, exc.detail)
                return redirect("governance:proposal-detail", pk=proposal.pk)
            else:
                note = "" if vote.counted else " It does not count: you own the model."
                messages.success(request, f"Your vote ({vote.choice}, weight {vote.weight:,}) "
                                          f"was recorded.{note}")
                return redirect("governance:proposal-detail", pk=proposal.pk)

    subject = proposal_subject(proposal)
    my_vote, weight, vote_blocked, cancel_allowed = None, 0, None, False
    if user.is_authenticated:
        # proposals_for prefetched the user's vote.
        my_vote = proposal.my_votes[0] if proposal.my_votes else None
        weight = voting_power_at(user, proposal.created_at)
        vote_blocked = vote_refusal(proposal=proposal, voter=user, state=proposal.state,
                                    weight=weight, has_voted=my_vote is not None)
        others_voted = Vote.objects.filter(proposal=proposal).exclude(voter=user).exists()
        cancel_allowed = cancel_refusal(proposal=proposal, user=user, state=proposal.state,
                                        others_voted=others_voted) is None
    cast = proposal.votes_cast_power
    counted = proposal.votes_for + proposal.votes_abstain
    return render(request, "governance_app/proposal_detail.html", {
        "proposal": proposal,
        "details": payload_details(proposal),
        "subject": subject,
        "warnings": proposal_warnings(proposal),
        "i_own_subject": bool(subject and user.is_authenticated
                              and subject["owner"] == user.get_username()),
        "tally_rows": [
            ("For", "for", proposal.votes_for),
            ("Against", "against", proposal.votes_against),
            ("Abstain", "abstain", proposal.votes_abstain),
        ],
        "cast": cast,
        "turnout_pct": _percent(cast, proposal.total_power_at_snapshot),
        "quorum_counted": counted,
        "quorum_progress": min(counted, proposal.quorum),
        "quorum_pct": _percent(counted, proposal.quorum),
        "my_vote": my_vote,
        "weight": weight,
        "vote_form": vote_form,
        "vote_blocked": vote_blocked,
        "can_execute": user.is_authenticated and proposal.state == ProposalState.PASSED,
        "can_cancel": cancel_allowed,
        "votes": proposal.votes.select_related("voter").order_by("-created_at", "-id")[:100],
        "now": now,
    })


def _percent(part: int, whole: int) -> int:
    return min(100, part * 100 // whole) if whole else 0


@login_required
@require_POST
def proposal_execute_view(request, pk: int):
    proposal = get_object_or_404(Proposal, pk=pk)
    try:
        proposal = proposal_execute(proposal=proposal, actor=request.user)
    except DomainError as exc:
        audit_web_refusal(request, exc)
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Proposal #{proposal.pk} executed.")
    return redirect("governance:proposal-detail", pk=pk)


@login_required
@require_POST
def proposal_cancel_view(request, pk: int):
    proposal = get_object_or_404(Proposal, pk=pk)
    try:
        # CancelInput, applied by the service, holds the rules for the reason.
        proposal_cancel(proposal=proposal, actor=request.user,
                        reason=request.POST.get("reason", ""))
    except InvalidInput as exc:
        messages.error(request, " ".join(
            message for messages_ in exc.extra["fields"].values() for message in messages_))
    except DomainError as exc:
        audit_web_refusal(request, exc)
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Proposal #{pk} canceled.")
    return redirect("governance:proposal-detail", pk=pk)
