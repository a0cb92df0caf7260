"""The signed-in user's account page (balance, voting power, tokens, ledger) and its token forms.

It reads every app (fees, governance, tokens), so it lives here, above all of them.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts_app.forms import TokenForm
from fees_app.models import LedgerEntry
from fees_app.services import account_for
from governance_app.selectors import voting_power_at
from models_app.models import Registration
from registry_site.errors import DomainError, audit_web_refusal
from registry_site.models import ApiToken
from registry_site.services import token_create, token_revoke, token_revoke_all

NEW_TOKEN_SESSION_KEY = "new_token_secret"


@login_required
def account(request):
    user = request.user
    form = TokenForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            _, secret = token_create(
                user=user, scopes=form.cleaned_data["scopes"] or None,
                expires_in=form.cleaned_data["expires_in"], name=form.cleaned_data["name"],
            )
        except DomainError as exc:
            audit_web_refusal(request, exc)
            messages.error(request, exc.detail)
        else:
            # The secret goes to the server-side session, not a message cookie, and is shown
            # once on the next page load.
            request.session[NEW_TOKEN_SESSION_KEY] = secret
            messages.success(request, "Token created. Copy it now: it will not be shown again.")
            return redirect("accounts:account")
    ledger = list(LedgerEntry.objects.filter(account__user=user)
                  .select_related("schedule").order_by("-created_at", "-id")[:50])
    _mark_visible_models(ledger, user)
    context = {
        "balance": account_for(user).balance,
        "voting_power": voting_power_at(user),
        "checkpoints": user.power_checkpoints.order_by("-effective_from", "-id")[:10],
        "tokens": ApiToken.objects.filter(user=user).order_by("-created_at")[:50],
        "ledger": ledger,
        "form": form,
        "new_secret": request.session.pop(NEW_TOKEN_SESSION_KEY, None),
    }
    return render(request, "accounts_app/account.html", context)


def _mark_visible_models(entries, user) -> None:
    """Set ``model_visible`` on each entry: a fee paid on a version the user may no longer see
    (someone else's, since suspended) names it without a link that would answer 404."""
    names = {entry.model_name for entry in entries if entry.model_name}
    visible = set(
        Registration.objects.visible_to(user).filter(name__in=names)
        .values_list("name", "version")
    ) if names else set()
    for entry in entries:
        entry.model_visible = (entry.model_name, entry.model_version) in visible


@login_required
@require_POST
def token_revoke_view(request, token_id: int):
    try:
        token_revoke(user=request.user, token_id=token_id)
    except DomainError as exc:
        audit_web_refusal(request, exc)
        messages.error(request, exc.detail)
    else:
        messages.success(request, "Token revoked.")
    return redirect("accounts:account")


@login_required
@require_POST
def token_revoke_all_view(request):
    count = token_revoke_all(user=request.user)
    messages.success(request, f"{count} token(s) revoked.")
    return redirect("accounts:account")
