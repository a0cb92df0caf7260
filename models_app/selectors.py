"""Reads shared by the API, the pages and the admin."""

import datetime

from django.db.models import Count, Sum
from django.utils import timezone

from fees_app.models import LedgerEntry
from fees_app.selectors import fee_stats
from models_app.models import Category, ModelName, ModelUser, Registration, UsageStats
from registry_site.errors import Conflict, NotFound
from registry_site.stats_cache import cached_statistics

Status = Registration.Status

# Registry-wide figures aggregate whole tables, so they are shared through the cache by every
# worker; every write that changes them (registrations, status changes, fees, usage) makes
# them unreachable when it commits (registry_site.stats_cache), and they expire after this.
REGISTRY_STATS_SECONDS = 60
DASHBOARD_SECONDS = 60
MOST_USED = 10


def visible_versions(*, name: str, user):
    """The versions of ``name`` the user may see, newest first (a queryset)."""
    return (Registration.objects.visible_to(user).filter(name=name)
            .select_related("owner", "usage").order_by("-registered_at", "-id"))


def model_versions(*, name: str, user) -> list[Registration]:
    """The versions of ``name`` the user may see, newest first; NotFound when there are none."""
    versions = list(visible_versions(name=name, user=user))
    if not versions:
        raise NotFound(f"No model named {name!r}.")
    return versions


def pick_version(versions: list[Registration], version: str | None) -> Registration:
    """The requested version, or the newest one."""
    if not version:
        return versions[0]
    for registration in versions:
        if registration.version == version:
            return registration
    raise NotFound(f"{versions[0].name} has no version {version!r}.")


def newest_approved(versions: list[Registration]) -> Registration:
    for registration in versions:
        if registration.status == Status.APPROVED:
            return registration
    raise Conflict(f"{versions[0].name} has no approved version to use.", code="not_approved")


def usage_totals(versions: list[Registration]) -> dict:
    """Usage summed over ``versions`` (their UsageStats already loaded); unique users counted
    once across versions."""
    stats = [r.usage for r in versions if hasattr(r, "usage")]
    total = sum(s.total_executions for s in stats)
    duration = sum(s.total_duration_us for s in stats)
    if len(versions) == 1:
        unique = stats[0].unique_users if stats else 0
    else:
        unique = (ModelUser.objects.filter(registration__in=[r.pk for r in versions])
                  .values("user").distinct().count())
    last = [s.last_execution for s in stats if s.last_execution]
    return {
        "total_executions": total,
        "successful_executions": sum(s.successful_executions for s in stats),
        "failed_executions": sum(s.failed_executions for s in stats),
        "total_fees_collected": sum(s.total_fees_collected for s in stats),
        "last_execution": max(last) if last else None,
        "avg_execution_time_us": duration // total if total else 0,
        "unique_users": unique,
    }


def approved_versions_at(*, name: str, when: datetime.datetime) -> list[dict]:
    """Versions of ``name`` whose status at ``when`` was approved, from the status history."""
    rows = (
        Registration.objects.filter(name=name).with_status_at(when)
        .filter(status_then=Status.APPROVED).order_by("-registered_at", "-id")
        .values("version", "status_since")
    )
    return [{"version": r["version"], "approved_since": r["status_since"]} for r in rows]


def model_fees(*, name: str, versions: list[Registration]) -> list[dict]:
    """Fees paid for the given (visible) versions of a model, by fee type."""
    return list(
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT, model_name=name,
                                   model_version__in=[v.version for v in versions])
        .values("fee_type").annotate(amount=Sum("amount"), count=Count("id"))
        .order_by("fee_type")
    )


def registry_stats() -> dict:
    """SPEC 7 RegistryStats: totals, by status, by category; cached until the next write."""
    return cached_statistics("registry", _registry_stats, REGISTRY_STATS_SECONDS)


def _registry_stats() -> dict:
    by_status = dict.fromkeys(Status.values, 0)
    by_category = {}
    total_size = 0
    for row in (Registration.objects.order_by().values("status", "category")
                .annotate(n=Count("pk"), size=Sum("size_bytes"))):
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        by_category[row["category"]] = by_category.get(row["category"], 0) + row["n"]
        total_size += row["size"] or 0
    total = sum(by_status.values())
    by_category = {c: by_category.get(c, 0) for c in Category.values}
    most_popular = max(by_category, key=lambda c: (by_category[c], c)) if total else None
    stats = {
        "total_models": total,
        "active_models": by_status[Status.APPROVED],
        "pending_models": by_status[Status.PENDING],
        "total_executions": UsageStats.objects.aggregate(n=Sum("total_executions"))["n"] or 0,
        "total_fees_collected": LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT)
        .aggregate(n=Sum("amount"))["n"] or 0,
        "total_registrants": ModelName.objects.values("owner").distinct().count(),
        "avg_model_size": total_size // total if total else 0,
        "most_popular_category": most_popular,
        "by_status": by_status,
        "by_category": by_category,
    }
    return stats


def dashboard() -> dict:
    """Everything the /stats/ page shows, from the same generation as registry_stats()."""
    return cached_statistics("dashboard", _dashboard, DASHBOARD_SECONDS)


def _dashboard() -> dict:
    fees = fee_stats()
    fees.pop("by_user", None)  # the public page names no payers
    data = {
        "registry": registry_stats(),
        "fees": fees,
        "most_used": list(
            UsageStats.objects.filter(registration__status=Status.APPROVED,
                                      total_executions__gt=0)
            .order_by("-total_executions")
            .values("registration__name", "registration__version", "total_executions",
                    "successful_executions", "unique_users")[:MOST_USED]
        ),
        "computed_at": timezone.now(),
    }
    return data
