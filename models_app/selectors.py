"""Reads shared by the API, the pages and the admin."""

import datetime
import functools

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from fees_app.models import LedgerEntry
from fees_app.selectors import fee_stats
from models_app.models import (
    Artifact,
    Category,
    ModelName,
    ModelUser,
    Registration,
    UsageDelta,
    UsageStats,
)
from registry_site.compiled import (
    MARKER_IDS,
    MARKER_TEXT,
    MARKER_TIME,
    Compiled,
    statement_cursor,
)
from registry_site.errors import Conflict, NotFound
from registry_site.roles import is_moderator
from registry_site.stats_cache import cached_statistics

Status = Registration.Status

# Registry-wide figures aggregate whole tables, so they are shared through the cache by every
# worker; every write that changes them (registrations, status changes, fees, usage) makes
# them unreachable when it commits (registry_site.stats_cache), and they expire after this.
REGISTRY_STATS_SECONDS = 60
DASHBOARD_SECONDS = 60
MOST_USED = 10


def pending_usage(registration_ids) -> dict[int, dict]:
    """The not yet folded usage of each registration that has any: counters and last time."""
    rows = (UsageDelta.objects.filter(registration_id__in=list(registration_ids))
            .values("registration_id")
            .annotate(total_executions=Count("id"),
                      successful_executions=Count("id", filter=Q(success=True)),
                      failed_executions=Count("id", filter=Q(success=False)),
                      total_fees_collected=Sum("fee"), total_duration_us=Sum("duration_us"),
                      unique_users=Count("id", filter=Q(new_user=True)),
                      last_execution=Max("recorded_at"))
            .order_by())
    return {row.pop("registration_id"): row for row in rows}


# The exact counters of some registrations: each row plus its pending deltas, read by one
# statement, hence from one snapshot. (Two reads could straddle a fold that moves a delta
# from the pending rows into the counter row, and miss it.)
_PENDING = {
    "total_executions": "COUNT(*)",
    "successful_executions": "SUM(CASE WHEN success THEN 1 ELSE 0 END)",
    "failed_executions": "SUM(CASE WHEN success THEN 0 ELSE 1 END)",
    "total_fees_collected": "SUM(fee)",
    "total_duration_us": "SUM(duration_us)",
    "unique_users": "SUM(CASE WHEN new_user THEN 1 ELSE 0 END)",
}


def _exact_rows(where: str, params: list, *, tail: str = "") -> list[tuple]:
    stats, delta = UsageStats._meta.db_table, UsageDelta._meta.db_table
    counters = ", ".join(f"u.{name} + COALESCE(p.{name}, 0)" for name in UsageStats.COUNTERS)
    sums = ", ".join(f"{expression} AS {name}" for name, expression in _PENDING.items())
    with statement_cursor() as cursor:
        cursor.execute(
            f"SELECT u.registration_id, {counters}, u.last_execution, p.last "
            f"FROM {stats} u LEFT JOIN (SELECT registration_id, {sums}, "
            f"MAX(recorded_at) AS last FROM {delta} GROUP BY registration_id) p "
            f"ON p.registration_id = u.registration_id WHERE {where} {tail}",
            params,
        )
        return cursor.fetchall()


def _apply(usage: UsageStats, row: tuple) -> None:
    for name, value in zip(UsageStats.COUNTERS, row[1:7], strict=True):
        setattr(usage, name, value)
    usage.last_execution = max((_aware(t) for t in row[7:9] if t is not None), default=None)


def _aware(value) -> datetime.datetime:
    # A raw query on SQLite hands back text, or a naive UTC time.
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, datetime.UTC)


def add_pending_usage(registrations) -> None:
    """Make the UsageStats loaded with each registration exact (one query)."""
    loaded = {r.pk: r.usage for r in registrations
              if r.pk is not None and "usage" in r._state.fields_cache and r.usage is not None}
    if not loaded:
        return
    ids = list(loaded)
    for row in _exact_rows(f"u.registration_id IN ({', '.join(['%s'] * len(ids))})", ids):
        _apply(loaded[row[0]], row)
    for registration in registrations:
        registration.pending_executions = 0  # now counted in the usage row read above


def usage_stats(registration_id: int) -> UsageStats:
    """One registration's exact usage counters: its row plus what is still pending."""
    usage = UsageStats(registration_id=registration_id)
    rows = _exact_rows("u.registration_id = %s", [registration_id])
    if not rows:
        raise UsageStats.DoesNotExist(registration_id)
    _apply(usage, rows[0])
    return usage


def total_executions() -> int:
    """Executions over the whole registry, folded and pending, in one snapshot."""
    stats, delta = UsageStats._meta.db_table, UsageDelta._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT COALESCE(SUM(total_executions), 0) FROM {stats}) "
                       f"+ (SELECT COUNT(*) FROM {delta})")
        return int(cursor.fetchone()[0])


ANONYMOUS, MEMBER, MODERATOR = "anonymous", "member", "moderator"


def caller_kind(user) -> str:
    """Which visibility condition applies to ``user``: none (moderators), approved or own or
    under an open proposal (signed-in users), approved only (anonymous callers)."""
    if is_moderator(user):
        return MODERATOR
    return MEMBER if user is not None and user.is_authenticated else ANONYMOUS


def _versions_for(build, kind: str, *, user_id: int, now, **markers):
    if kind == MODERATOR:
        versions = Registration.objects.all()
    elif kind == ANONYMOUS:
        versions = Registration.objects.visible_to(None)
    else:
        member = get_user_model()(pk=user_id, is_superuser=False)
        member._is_moderator = False  # what caller_kind found for the real caller
        versions = Registration.objects.visible_to(member, now=now)
    return build(versions, **markers)


class VisibleCompiled:
    """A query over the versions a caller may see, compiled once per kind of caller
    (registry_site.compiled).

    ``build(versions, **markers)`` narrows ``versions`` (the caller's visible ones) into the
    queryset; the kinds differ in the visibility condition only, so within a kind each call
    changes values, never the SQL. ``rows(user=..., **values)`` evaluates it for a caller.
    """

    def __init__(self, build, **markers):
        # Only a signed-in user's condition names the user; the time reaches the SQL when an
        # app above adds visibility for them (governance: versions under open proposals).
        optional = {ANONYMOUS: ("user_id", "now"), MEMBER: ("now",), MODERATOR: ("user_id", "now")}
        self._by_kind = {
            kind: Compiled(functools.partial(_versions_for, build, kind), optional=optional[kind],
                           user_id=MARKER_IDS[2], now=MARKER_TIME, **markers)
            for kind in optional
        }

    def rows(self, *, user, **values) -> list:
        kind = caller_kind(user)
        return self._by_kind[kind].rows(user_id=user.pk if kind == MEMBER else 0,
                                        now=timezone.now(), **values)


def _newest_first(versions, name):
    return versions.filter(name=name).order_by("-registered_at", "-id")


def named_versions(versions, name: str):
    """Those of ``versions`` named ``name``, newest first, with owner, usage row and pending
    executions (a queryset)."""
    return (_newest_first(versions, name).select_related("owner", "usage")
            .with_pending_executions())


def visible_versions(*, name: str, user):
    """The versions of ``name`` the user may see, newest first (a queryset)."""
    return named_versions(Registration.objects.visible_to(user), name)


# model_versions' two reads, on every request that acts on a model by name.
_VERSIONS = VisibleCompiled(named_versions, name=MARKER_TEXT)
_LEAN_VERSIONS = VisibleCompiled(
    lambda versions, name: _newest_first(versions, name)
    .only("id", "name", "version", "status", "owner_id"), name=MARKER_TEXT)


def model_versions(*, name: str, user, exact_usage: bool = True) -> list[Registration]:
    """The versions of ``name`` the user may see, newest first; NotFound when there are none.

    ``exact_usage`` False loads only what choosing and acting on a version needs (its id,
    name, version, status and owner; no owner row, usage row or pending count), for a caller
    that locks and rereads the version it acts on, such as recording usage.
    """
    versions = (_VERSIONS if exact_usage else _LEAN_VERSIONS).rows(user=user, name=name)
    if not versions:
        raise NotFound(f"No model named {name!r}.")
    if exact_usage:
        add_pending_usage(versions)
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
    downloads = (Artifact.objects.filter(registration__in=[r.pk for r in versions])
                 .aggregate(n=Sum("downloads"))["n"] or 0)
    return {
        "downloads": downloads,
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
        "total_executions": total_executions(),
        "total_downloads": Artifact.objects.aggregate(n=Sum("downloads"))["n"] or 0,
        "total_fees_collected": LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT)
        .aggregate(n=Sum("amount"))["n"] or 0,
        "total_registrants": ModelName.objects.values("owner").distinct().count(),
        "avg_model_size": total_size // total if total else 0,
        "most_popular_category": most_popular,
        "by_status": by_status,
        "by_category": by_category,
    }
    return stats


def most_used(limit: int = MOST_USED) -> list[dict]:
    """The approved versions with the most executions, counting pending usage.

    Exact without summing every row, in one statement: a version outside the folded top
    ``limit`` that has no pending usage cannot pass any of them, so the candidates are those
    plus the versions with pending rows (few: the fold runs after every commit).
    """
    registration = Registration._meta.db_table
    stats, delta = UsageStats._meta.db_table, UsageDelta._meta.db_table
    approved = (f"SELECT u.registration_id FROM {stats} u JOIN {registration} r "
                "ON r.id = u.registration_id WHERE r.status = %s")
    rows = _exact_rows(
        f"u.registration_id IN (SELECT registration_id FROM ({approved} "
        "AND u.total_executions > 0 ORDER BY u.total_executions DESC LIMIT %s) top "
        f"UNION SELECT registration_id FROM {delta}) "
        f"AND u.registration_id IN ({approved})",
        [Status.APPROVED, limit, Status.APPROVED])
    ranked = sorted((row for row in rows if row[1] > 0), key=lambda row: (-row[1], row[0]))
    ranked = ranked[:limit]
    names = {pk: (n, v) for pk, n, v in Registration.objects.filter(
        pk__in=[row[0] for row in ranked]).values_list("pk", "name", "version")}
    return [{"registration__name": names[row[0]][0], "registration__version": names[row[0]][1],
             "total_executions": row[1], "successful_executions": row[2],
             "unique_users": row[6]} for row in ranked]


def dashboard() -> dict:
    """Everything the /stats/ page shows, from the same generation as registry_stats()."""
    return cached_statistics("dashboard", _dashboard, DASHBOARD_SECONDS)


def _dashboard() -> dict:
    fees = fee_stats()
    fees.pop("by_user", None)  # the public page names no payers
    data = {
        "registry": registry_stats(),
        "fees": fees,
        "most_used": most_used(),
        "computed_at": timezone.now(),
    }
    return data
