"""Pages: the catalog, registering a model, a model's page and the statistics dashboard."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from fees_app.models import FeeSchedule, FeeType
from models_app.filtersets import RegistrationFilterSet
from models_app.forms import DeprecateForm, EditForm, RegistrationForm
from models_app.models import Category, Registration, Source, StatusChange
from models_app.selectors import (
    dashboard,
    model_fees,
    model_versions,
    pick_version,
    usage_totals,
)
from models_app.services import (
    registration_create,
    registration_fee_quote,
    registration_transition,
    registration_update,
)
from registry_site.errors import DomainError, NotFound, PreconditionFailed, audit_web_refusal
from registry_site.pagination import page_number
from registry_site.roles import is_moderator

PAGE_SIZE = 25
HISTORY_ROWS = 50
CHART_HEIGHT = 100
CHART_BAR_WIDTH = 18


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def catalog(request):
    """Visible registrations, filtered by the API's FilterSet; pages never count the table."""
    queryset = (Registration.objects.visible_to(request.user).select_related("owner", "usage")
                .with_pending_executions())
    filterset = RegistrationFilterSet(request.GET, queryset=queryset, request=request)
    page = page_number(request)
    rows, has_next = [], False
    if filterset.is_valid():
        offset = (page - 1) * PAGE_SIZE
        rows = list(filterset.qs[offset: offset + PAGE_SIZE + 1])
        has_next = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
    return render(request, "models_app/catalog.html", {
        "filterset": filterset, "rows": rows, "page": page, "has_next": has_next,
        "query": _query_without_page(request),
    })


def _schedule_notes() -> list[FeeSchedule]:
    return list(FeeSchedule.objects.active()
                .filter(fee_type__in=[FeeType.REGISTRATION, FeeType.UPDATE])
                .order_by("fee_type"))


@login_required
def register(request):
    """Register a model version through the same service as the API; PRG on success."""
    form = RegistrationForm(request.POST or None)
    quote = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if "quote" in request.POST:
                quote = registration_fee_quote(owner=request.user, name=data["name"],
                                               size_bytes=data["size_bytes"])
            else:
                registration = registration_create(owner=request.user, source=Source.WEB,
                                                   **data)
        except DomainError as exc:
            audit_web_refusal(request, exc)
            form.add_error(None, exc.detail)
        else:
            if quote is None:
                messages.success(
                    request, f"Registered {registration.name} {registration.version}: it is "
                    f"pending review. Fee charged: {registration.registration_fee}.")
                url = reverse("models:model-page", args=[registration.name])
                return redirect(f"{url}?{urlencode({'version': registration.version})}")
    return render(request, "models_app/register.html", {
        "form": form, "quote": quote, "schedules": _schedule_notes(),
    })


def model_page(request, name: str):
    """A model's versions, status history, usage and fees, with the owner's actions."""
    try:
        versions = model_versions(name=name, user=request.user)
        selected = pick_version(versions, request.GET.get("version"))
    except NotFound:
        raise Http404("No such model.") from None
    history = (StatusChange.objects.filter(registration__in=[v.pk for v in versions])
               .select_related("registration", "actor")
               .order_by("-created_at", "-id")[:HISTORY_ROWS])
    is_owner = request.user.is_authenticated and selected.owner_id == request.user.pk
    can_deprecate = is_owner and any(
        (selected.status, Registration.Status.DEPRECATED) == move
        for move in Registration.OWNER_TRANSITIONS
    )
    return render(request, "models_app/model.html", {
        "name": name, "versions": versions, "selected": selected, "history": history,
        "totals": usage_totals(versions), "fees": model_fees(name=name, versions=versions),
        "is_owner": is_owner, "can_deprecate": can_deprecate,
        "can_edit": is_owner or is_moderator(request.user),
        "deprecate_form": DeprecateForm(initial={"version": selected.version}),
    })


@login_required
@require_POST
def deprecate(request, name: str):
    """The owner's action on the model page: deprecate one version."""
    form = DeprecateForm(request.POST)
    url = reverse("models:model-page", args=[name])
    if not form.is_valid():
        messages.error(request, " ".join(m for errors in form.errors.values() for m in errors))
        return redirect(url)
    try:
        versions = model_versions(name=name, user=request.user)
        registration = pick_version(versions, form.cleaned_data["version"])
        registration_transition(
            registration=registration, to_status=Registration.Status.DEPRECATED,
            actor=request.user, source=Source.WEB, reason=form.cleaned_data["reason"],
        )
    except NotFound:
        raise Http404("No such model.") from None
    except DomainError as exc:
        audit_web_refusal(request, exc)
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"{registration} is now deprecated.")
    return redirect(f"{url}?{urlencode({'version': form.cleaned_data['version']})}")


@login_required
def edit(request, name: str):
    """A version's metadata for its owner (or a moderator, with a reason), through the API's
    service; the form carries the ETag it showed, so a concurrent edit is not overwritten."""
    try:
        versions = model_versions(name=name, user=request.user)
        registration = pick_version(versions, request.POST.get("version")
                                    or request.GET.get("version"))
    except NotFound:
        raise Http404("No such model.") from None
    if registration.owner_id != request.user.pk and not is_moderator(request.user):
        raise PermissionDenied("Only the owner or a moderator may edit this version.")
    page = f"{reverse('models:model-page', args=[name])}?" + urlencode(
        {"version": registration.version})
    form = EditForm(request.POST or None, initial=_edit_initial(registration))
    if request.method == "POST" and form.is_valid():
        try:
            registration_update(registration=registration, actor=request.user,
                                source=Source.WEB, fields=form.cleaned_data,
                                if_match=request.POST.get("etag", ""))
        except PreconditionFailed:
            messages.error(request, "Someone changed this version while you were editing it. "
                                    "Here it is as it is now: make your change again.")
            form = EditForm(initial=_edit_initial(
                Registration.objects.get(pk=registration.pk)))
        except DomainError as exc:
            audit_web_refusal(request, exc)
            for field, errors in exc.extra.get("fields", {"__all__": [exc.detail]}).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Saved the details of {registration}.")
            return redirect(page)
    return render(request, "models_app/edit.html", {
        "name": name, "registration": registration, "form": form, "page": page,
        "moderating": registration.owner_id != request.user.pk,
    })


def _edit_initial(registration: Registration) -> dict:
    return {"version": registration.version, "etag": registration.etag,
            "description": registration.description, "license": registration.license,
            "source_url": registration.source_url, "tags": ", ".join(registration.tags)}


def _bars(values: list[tuple[str, int]]) -> dict:
    """Server-rendered bar chart geometry (CSP forbids inline styles and scripts)."""
    top = max((v for _, v in values), default=0) or 1
    bars = []
    for index, (label, value) in enumerate(values):
        height = round(CHART_HEIGHT * value / top)
        bars.append({"label": label, "value": value, "x": index * (CHART_BAR_WIDTH + 4),
                     "y": CHART_HEIGHT - height, "height": height})
    return {"bars": bars, "width": max(len(values) * (CHART_BAR_WIDTH + 4), 1),
            "height": CHART_HEIGHT, "bar_width": CHART_BAR_WIDTH}


def stats_page(request):
    data = dashboard()
    registry = data["registry"]
    total = registry["total_models"] or 1
    fees = data["fees"]
    fee_total = fees["total_collected"] or 1
    return render(request, "models_app/stats.html", {
        "registry": registry,
        "by_status": [(s.label, s.value, registry["by_status"].get(s.value, 0), total)
                      for s in Registration.Status],
        "by_category": [(label, registry["by_category"].get(value, 0), total)
                        for value, label in Category.choices],
        "fees": fees,
        "fees_by_type": [(fee_type, row["amount"], row["count"], fee_total)
                         for fee_type, row in fees["by_type"].items()],
        "chart": _bars([(row["date"], row["amount"]) for row in fees["by_day"]]),
        "most_used": data["most_used"],
        "computed_at": data["computed_at"],
    })
