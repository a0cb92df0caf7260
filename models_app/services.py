"""Every write on the registry: registration, status transitions, usage, storage fees."""

import datetime
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Exists, F, Q
from django.utils import timezone

from fees_app.calculator import MAX_STORED_INT
from fees_app.models import FeeType
from fees_app.services import fee_charge, fee_quote
from models_app.inputs import (
    RegistrationEditInput,
    RegistrationInput,
    TransitionInput,
    UsageInput,
)
from models_app.models import (
    MetadataChange,
    ModelName,
    ModelUser,
    Registration,
    StatusChange,
    StorageCharge,
    UsageDelta,
    UsageStats,
)
from models_app.read_cache import model_changed
from models_app.selectors import model_versions, newest_approved, pending_usage, pick_version
from registry_site.audit import audit_record
from registry_site.compiled import (
    MARKER_TEXTS,
    Compiled,
    insert_after,
    insert_new,
    insert_statement,
    statement_cursor,
)
from registry_site.errors import (
    Conflict,
    Forbidden,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from registry_site.etags import etag_named
from registry_site.inputs import validated
from registry_site.integrity import is_unique_violation
from registry_site.parameters import get_parameter
from registry_site.roles import is_moderator
from registry_site.stats_cache import statistics_changed

Status = Registration.Status
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeeBasis:
    """What registering a version costs: the fee type and the units it is charged on."""

    fee_type: str
    units: int
    amount: int


def _fee_basis(newest_size: int | None, size_bytes: int) -> tuple[str, int]:
    if newest_size is None:
        return FeeType.REGISTRATION, size_bytes
    return FeeType.UPDATE, abs(size_bytes - newest_size)


def registration_fee_quote(*, owner, name: str, size_bytes: int) -> FeeBasis:
    """The fee registering ``size_bytes`` under ``name`` would cost ``owner`` right now.

    Only the owner's own versions are looked at: another registrant's name would be refused
    anyway, and its hidden versions' sizes are not the caller's to learn from a quote.
    """
    newest = (Registration.objects.filter(name=name, owner=owner)
              .order_by("-registered_at", "-id").values_list("size_bytes", flat=True).first())
    fee_type, units = _fee_basis(newest, size_bytes)
    _, quote = fee_quote(fee_type=fee_type, units=units)
    return FeeBasis(fee_type=fee_type, units=units, amount=quote.amount)


# Every registration's two reads (registry_site.compiled): the name's row, locked, and the
# newest version's size with whether this version exists.
_NAME_LOCK = Compiled(
    lambda name: ModelName.objects.select_for_update(no_key=True).filter(name=name)
    .values_list("owner_id", flat=True), name=MARKER_TEXTS[0])
_NEWEST = Compiled(
    lambda name, version: Registration.objects.filter(name=name)
    .order_by("-registered_at", "-id")
    .annotate(duplicate=Exists(Registration.objects.filter(name=name, version=version)))
    .values_list("size_bytes", "duplicate")[:1], name=MARKER_TEXTS[0], version=MARKER_TEXTS[1])


def registration_create(*, owner, source: str = "api", **fields) -> Registration:
    """Register one version of a model and charge its fee, all or nothing.

    ``fields`` are those of RegistrationInput, which checks every rule and reports every
    broken field at once. The first version of a name pays the registration fee on its size;
    a later version pays the update fee on the absolute size change against the newest earlier
    version.
    """
    if get_parameter("registrations_paused"):
        raise Unavailable(
            "Registrations are paused by an emergency action; try again later.",
            code="registrations_paused",
        )
    data = validated(RegistrationInput, fields)
    name, version, size_bytes = data["name"], data["version"], data["size_bytes"]

    with transaction.atomic():
        # Claim the name, or find its owner. A concurrent first registration of the same name
        # waits on the unique index here until the first one commits or rolls back.
        if not _claim_name(name, owner):
            # The name row is the lock: every registration of this name queues up behind it
            # (only its owner's, since nobody else gets past the check below).
            owner_id = _NAME_LOCK.rows(name=name)[0]
            if owner_id != owner.pk:
                raise Forbidden(
                    f"The name {name!r} belongs to another registrant; only its owner may "
                    "register new versions.", code="not_owner",
                )
        # The newest version's size prices an update; one bounded read, however many
        # versions the name has.
        newest = next(iter(_NEWEST.rows(name=name, version=version)), None)
        if newest is not None and newest[1]:
            raise Conflict(f"{name} {version} is already registered.", code="duplicate")
        fee_type, units = _fee_basis(newest[0] if newest else None, size_bytes)
        entry = fee_charge(user=owner, fee_type=fee_type, units=units, model_name=name,
                           model_version=version)
        now = timezone.now()
        registration = Registration(owner=owner, **data, registration_fee=entry.amount,
                                    registered_at=now, updated_at=now)
        _insert_with_first_status(registration, StatusChange(
            from_status="", to_status=Status.PENDING, actor=owner, source=source,
            reason="Registered", created_at=now,
        ))
        insert_new(UsageStats(registration=registration))
        audit_record(
            action="model.registered", actor=owner, target=registration,
            details={"name": name, "version": version, "fee_type": fee_type,
                     "fee": entry.amount, "size_bytes": size_bytes, "source": source},
        )
        # fee_charge above has already marked the statistics as changed at commit.
        model_changed(name)
    return registration


def _insert_with_first_status(registration: Registration, change: StatusChange) -> None:
    """Insert a new registration and the first row of its status history; on PostgreSQL
    one statement (registry_site.compiled.insert_after)."""
    if connection.vendor != "postgresql":
        insert_new(registration)
        change.registration = registration
        insert_new(change)
        return
    statement, params = insert_statement(registration)
    insert_after(change, statement=statement, params=params,
                 taken={"registration_id": "source.id"})
    registration.pk = change.registration_id
    registration._state.adding = False
    registration._state.db = change._state.db
    change.registration = registration


def _claim_name(name: str, owner) -> bool:
    """Insert the name for ``owner``; False when it already exists (whoever owns it).

    An upsert rather than an insert under a savepoint: one statement either way.
    """
    table = ModelName._meta.db_table
    with statement_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (name, owner_id, created_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO NOTHING RETURNING id",
            [name, owner.pk, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        return cursor.fetchone() is not None


def registration_transition(*, registration: Registration, to_status: str, actor=None,
                            source: str, reason: str = "",
                            proposal_id: int | None = None) -> Registration:
    """Move a registration to another status if the rules allow it, with history and audit.

    ``actor`` None means the registry itself acts (an executed governance proposal).
    Refusals raise Conflict (a move the status table does not allow) or Forbidden (the actor
    may not make it); nothing changes then.
    """
    data = validated(TransitionInput, {"status": to_status, "reason": reason or ""})
    to_status, reason = data["status"], data["reason"]
    with transaction.atomic():
        current = Registration.objects.select_for_update().get(pk=registration.pk)
        from_status = current.status
        if to_status not in Registration.TRANSITIONS.get(from_status, set()):
            raise Conflict(
                f"Cannot move {current} from {from_status} to {to_status}.",
                code="invalid_transition", from_status=from_status, to_status=to_status,
            )
        if actor is not None:
            moderator = is_moderator(actor)
            is_owner = current.owner_id == actor.pk
            if not moderator and not (is_owner and (from_status, to_status)
                                      in Registration.OWNER_TRANSITIONS):
                raise Forbidden(f"You may not move {current} from {from_status} to {to_status}.")
            if moderator and not reason and source != "governance":
                raise InvalidInput({"reason": "A reason is required for a moderator action."})
            if to_status == Status.APPROVED and is_owner:
                raise Forbidden("A moderator may not approve their own model.",
                                code="self_approval")
        now = timezone.now()
        current.status = to_status
        current.updated_at = now
        current.save(update_fields=["status", "updated_at"])
        StatusChange.objects.create(
            registration=current, from_status=from_status, to_status=to_status, actor=actor,
            source=source, reason=reason, proposal_id=proposal_id, created_at=now,
        )
        audit_record(
            action="model.status_changed", actor=actor, target=current,
            details={"name": current.name, "version": current.version, "from": from_status,
                     "to": to_status, "source": source, "reason": reason,
                     "proposal_id": proposal_id},
        )
        statistics_changed()
        model_changed(current.name)
    registration.status = current.status
    registration.updated_at = current.updated_at
    return registration


def registration_update(*, registration: Registration, actor, source: str, fields,
                        if_match: str | None = None) -> Registration:
    """Change a version's description, tags, license or source URL: free, with history
    (MetadataChange) and audit. The owner may; a moderator may with a reason.

    ``if_match``: the ETag the caller read; if the version changed since, PreconditionFailed
    (412) and nothing changes. Checked under the row lock, so two editors cannot both win.
    ``fields`` is the edit as sent (a mapping; any other key is refused, naming it). Fields
    sent with their current value change nothing and record nothing.
    """
    if not isinstance(fields, Mapping):
        raise InvalidInput({"non_field_errors": "Expected a JSON object."})
    data = validated(RegistrationEditInput, fields)
    reason = data.pop("reason")
    with transaction.atomic():
        current = Registration.objects.select_for_update().get(pk=registration.pk)
        if if_match is not None and not etag_named(if_match, current.etag, weak=False):
            raise PreconditionFailed(
                f"{current} changed since it was read (If-Match {if_match}); read it again.",
                etag=current.etag)
        is_owner = current.owner_id == actor.pk
        if not is_owner and not is_moderator(actor):
            raise Forbidden(f"Only the owner or a moderator may edit {current}.")
        if not is_owner and not reason:
            raise InvalidInput({"reason": "A reason is required for a moderator's edit."})
        changes = {name: {"from": getattr(current, name), "to": value}
                   for name, value in data.items() if getattr(current, name) != value}
        if changes:
            for name in changes:
                setattr(current, name, data[name])
            current.updated_at = timezone.now()
            current.save(update_fields=[*changes, "updated_at"])
            MetadataChange.objects.create(registration=current, changes=changes, actor=actor,
                                          source=source, reason=reason,
                                          created_at=current.updated_at)
            audit_record(
                action="model.metadata_changed", actor=actor, target=current,
                details={"name": current.name, "version": current.version,
                         "fields": sorted(changes), "source": source, "reason": reason},
            )
            model_changed(current.name)
    return current


@dataclass(frozen=True)
class UsageRecord:
    registration: Registration
    success: bool
    duration_us: int
    fee: int
    balance: int
    recorded_at: datetime.datetime


def usage_record(*, user, success: bool, duration_us: int,
                 registration: Registration | None = None, name: str = "",
                 version: str = "") -> UsageRecord:
    """Record one execution of an approved version and charge the caller the execution fee.

    The version is ``registration``, or the one of model ``name`` the caller names by
    ``version`` (the newest approved one without), chosen and locked by one statement; a name
    or version the caller cannot use gets the answer a read of it gets (404, or 409 for a
    version that is not approved).

    Failed executions pay too: the fee pays for the record. The counters move by an
    insert-only UsageDelta row, folded into UsageStats after commit, so concurrent records of
    one model never lose an update and never wait for each other's counter row.
    """
    data = validated(UsageInput, {"success": success, "duration_us": duration_us})
    success, duration_us = data["success"], data["duration_us"]
    with transaction.atomic():
        if registration is None:
            registration, status, counters = _lock_named_for_usage(name, version, user=user)
        else:
            status, counters = _lock_for_usage(registration.pk)
        if status != Status.APPROVED:
            raise Conflict(
                f"{registration} is {status}; only approved versions can be used.",
                code="not_approved", status=status,
            )
        entry = fee_charge(user=user, fee_type=FeeType.EXECUTION, units=1,
                           model_name=registration.name, model_version=registration.version)
        now = timezone.now()
        # The delta row and the first-use row at once; the check below rolls both back.
        delta = _record_use(UsageDelta(registration_id=registration.pk, success=success,
                                       fee=entry.amount, duration_us=duration_us,
                                       recorded_at=now), user_id=user.pk)
        new_user = delta.new_user
        increments = {
            "total_executions": 1,
            "successful_executions": 1 if success else 0,
            "failed_executions": 0 if success else 1,
            "total_fees_collected": entry.amount,
            "total_duration_us": duration_us,
            "unique_users": 1 if new_user else 0,
        }
        full = [name for name, amount in increments.items()
                if counters[name] > MAX_STORED_INT - amount]
        if full:
            # Refused, the operation rolls back (fee included) and later records of smaller
            # amounts still succeed.
            raise Conflict(
                f"The usage counters of {registration} are full ({', '.join(full)} would pass "
                f"{MAX_STORED_INT}); this record is refused and nothing was charged.",
                code="counter_overflow", counters=full,
            )
        # Its total_executions is on the model's page (exact) and on list pages (which may
        # show it up to read_cache.LIST_ANSWER_SECONDS late); no owner, status or proposal
        # changes, so the members' view of the model stays.
        model_changed(registration.name, detail_only=True, members=False)
        audit_record(
            action="model.usage_recorded", actor=user, target=registration,
            details={"name": registration.name, "version": registration.version,
                     "success": success, "duration_us": duration_us, "fee": entry.amount},
        )
        transaction.on_commit(lambda: _fold_after_commit(registration.pk))
    registration.status = status
    return UsageRecord(registration=registration, success=success, duration_us=duration_us,
                       fee=entry.amount, balance=entry.balance_after, recorded_at=now)


COUNTERS = UsageStats.COUNTERS
# What each counter adds up over the pending rows of UsageDelta (SQL shared by PostgreSQL and
# SQLite).
PENDING_SUMS = {
    "total_executions": "COUNT(*)",
    "successful_executions": "COALESCE(SUM(CASE WHEN success THEN 1 ELSE 0 END), 0)",
    "failed_executions": "COALESCE(SUM(CASE WHEN success THEN 0 ELSE 1 END), 0)",
    "total_fees_collected": "COALESCE(SUM(fee), 0)",
    "total_duration_us": "COALESCE(SUM(duration_us), 0)",
    "unique_users": "COALESCE(SUM(CASE WHEN new_user THEN 1 ELSE 0 END), 0)",
}
# The pending sums as select columns, and the counters as the folded row ``u`` beside them.
PENDING_COLUMNS = ", ".join(f"{expression} AS {name}" for name, expression in PENDING_SUMS.items())
COUNTER_COLUMNS = ", ".join(f"u.{name}, p.{name}" for name in COUNTERS)


def _counters_of(values) -> dict[str, int]:
    return {name: values[2 * i] + values[2 * i + 1] for i, name in enumerate(COUNTERS)}


def _lock_named_for_usage(name: str, version: str, *, user):
    """The version of ``name`` to use, share-locked as _lock_for_usage locks, with its status
    and exact counters: ``version``, or the newest approved one.

    On PostgreSQL one statement finds an approved version and locks it. Approved versions
    are visible to everyone, so the caller needs no visibility condition; when none
    matches, the caller's own view of the model says why (404 or 409), as a read does.
    """
    if connection.vendor == "postgresql":
        registration = Registration._meta.db_table
        which = " AND r.version = %s" if version else ""
        with statement_cursor() as cursor:
            cursor.execute(
                f"SELECT r.id, r.version, r.owner_id, r.status, {COUNTER_COLUMNS} "
                f"FROM {registration} r "
                f"JOIN {UsageStats._meta.db_table} u ON u.registration_id = r.id "
                f"CROSS JOIN LATERAL (SELECT {PENDING_COLUMNS} FROM {UsageDelta._meta.db_table} "
                "WHERE registration_id = r.id) p "
                f"WHERE r.name = %s AND r.status = %s{which} "
                "ORDER BY r.registered_at DESC, r.id DESC LIMIT 1 FOR SHARE OF r",
                [name, Status.APPROVED, *([version] if version else [])],
            )
            row = cursor.fetchone()
        if row is not None:
            found = Registration(id=row[0], name=name, version=row[1], owner_id=row[2],
                                 status=row[3])
            found._state.adding = False
            return found, row[3], _counters_of(row[4:])
    versions = model_versions(name=name, user=user, exact_usage=False)
    found = pick_version(versions, version) if version else newest_approved(versions)
    status, counters = _lock_for_usage(found.pk)
    return found, status, counters


def _lock_for_usage(registration_id: int) -> tuple[str, dict[str, int]]:
    """Share-lock the registration; return its status and its exact usage counters.

    FOR SHARE, not FOR UPDATE: records of one model by many users hold it together, while a
    status change (registration_transition's FOR UPDATE) waits for records in flight, and a
    record that waited for a status change sees the new status. The counters are the folded
    row plus the committed pending rows, for the overflow check.
    """
    registration = Registration._meta.db_table
    stats = UsageStats._meta.db_table
    delta = UsageDelta._meta.db_table
    lock = " FOR SHARE OF r" if connection.vendor == "postgresql" else ""
    with statement_cursor() as cursor:
        cursor.execute(
            f"SELECT r.status, {COUNTER_COLUMNS} "
            f"FROM {registration} r JOIN {stats} u ON u.registration_id = r.id, "
            f"(SELECT {PENDING_COLUMNS} FROM {delta} WHERE registration_id = %s) p "
            f"WHERE r.id = %s{lock}",
            [registration_id, registration_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("No such registration.")
    return row[0], _counters_of(row[1:])


def _record_use(delta: UsageDelta, *, user_id: int) -> UsageDelta:
    """Insert the pending delta of one record, noting first that ``user_id`` has used the
    registration: ``delta.new_user`` is True if this is their first time.

    The first use is an upsert, not an insert under a savepoint: a concurrent first use by
    the same user waits on the unique index and then inserts nothing. On PostgreSQL the
    upsert and the delta are one statement.
    """
    table = ModelUser._meta.db_table
    upsert = (f"INSERT INTO {table} (registration_id, user_id, first_used_at) "
              "VALUES (%s, %s, %s) ON CONFLICT (registration_id, user_id) DO NOTHING RETURNING id")
    params = [delta.registration_id, user_id,
              connection.ops.adapt_datetimefield_value(delta.recorded_at)]
    if connection.vendor == "postgresql":
        return insert_after(delta, statement=upsert, params=params, each_row=False,
                            taken={"new_user": "EXISTS (SELECT 1 FROM source)"})
    with statement_cursor() as cursor:
        cursor.execute(upsert, params)
        delta.new_user = cursor.fetchone() is not None
    return insert_new(delta)


# When this process last folded after a commit (USAGE_FOLD_AFTER_COMMIT_MS).
_last_fold = 0.0


def _fold_after_commit(registration_id: int) -> None:
    global _last_fold
    every = settings.USAGE_FOLD_AFTER_COMMIT_MS / 1000
    if every:
        now = time.monotonic()
        if now - _last_fold < every:
            return  # folded a moment ago; reads add the pending rows, so nothing is stale
        # Two threads may both fold here; rows the other holds are skipped, not waited for.
        _last_fold = now
        registration_ids = None  # everything pending, this process's other records too
    else:
        registration_ids = [registration_id]
    try:
        usage_counters_fold(registration_ids=registration_ids)
    except DatabaseError as exc:
        # The record has committed and its pending row keeps the figures exact; the
        # scheduled fold tries again.
        logger.warning("usage counters of %s not folded: %s", registration_id, exc)


def usage_counters_fold(*, registration_ids: list[int] | None = None) -> int:
    """Move pending UsageDelta rows into UsageStats (those of ``registration_ids``, or all).

    Idempotent and safe to run at any time, from any number of processes: a counter row
    another fold holds is skipped (its rows wait for the next fold), never waited for, and
    each row's deltas are deleted in the statement that adds them, so none is counted twice
    or lost. Rows of transactions not yet committed are not seen and stay for a later fold.
    Returns how many counter rows moved. A sum a 64-bit counter cannot hold fails the fold of
    that batch and leaves its rows pending (readers still add them).
    """
    stats = UsageStats._meta.db_table
    delta = UsageDelta._meta.db_table
    if registration_ids is None:
        which = f"registration_id IN (SELECT registration_id FROM {delta})"
        params = []
    else:
        if not registration_ids:
            return 0
        which = f"registration_id IN ({', '.join(['%s'] * len(registration_ids))})"
        params = list(registration_ids)
    moves = ", ".join(f"{name} = u.{name} + s.{name}" for name in COUNTERS)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH target AS (SELECT registration_id FROM {stats} WHERE {which} "
                "FOR NO KEY UPDATE SKIP LOCKED), "
                f"moved AS (DELETE FROM {delta} d USING target t "
                "WHERE d.registration_id = t.registration_id RETURNING d.*), "
                f"s AS (SELECT registration_id, {PENDING_COLUMNS}, MAX(recorded_at) AS last "
                "FROM moved GROUP BY registration_id) "
                f"UPDATE {stats} u SET {moves}, "
                "last_execution = GREATEST(u.last_execution, s.last) "
                "FROM s WHERE u.registration_id = s.registration_id",
                params,
            )
            return cursor.rowcount
    # SQLite: writers already run one at a time (IMMEDIATE transactions).
    folded = 0
    with transaction.atomic():
        pending = UsageDelta.objects.all()
        if registration_ids is not None:
            pending = pending.filter(registration_id__in=registration_ids)
        for registration_id in set(pending.values_list("registration_id", flat=True)):
            rows = UsageDelta.objects.filter(registration_id=registration_id)
            totals = pending_usage([registration_id])[registration_id]
            UsageStats.objects.filter(pk=registration_id).update(
                **{name: F(name) + totals[name] for name in COUNTERS})
            UsageStats.objects.filter(pk=registration_id).filter(
                Q(last_execution__isnull=True) | Q(last_execution__lt=totals["last_execution"])
            ).update(last_execution=totals["last_execution"])
            rows.delete()
            folded += 1
    return folded


def usage_deltas_vacuum() -> bool:
    """Vacuum the pending-delta table (PostgreSQL; True if it ran).

    Every record inserts a delta row and the next fold deletes it: a queue whose dead rows
    every record's exact-counter read then walks past until a vacuum clears them. The
    autovacuum's default thresholds (and a cluster that runs without it) let them pile up by
    the ten thousand, which doubled the database's CPU per record; the scheduled fold runs
    this after each fold, a few milliseconds on a table of a few live rows. It needs a
    connection outside any transaction, and skips the table while another vacuum holds it.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (SKIP_LOCKED) {UsageDelta._meta.db_table}")
    return True


@dataclass
class StorageRun:
    """What one storage-fee run did."""

    day: datetime.date
    charged: int = 0
    amount: int = 0
    unpaid: list[StorageCharge] = field(default_factory=list)
    already_charged: int = 0


def storage_fees_charge(*, day: datetime.date, actor=None) -> StorageRun:
    """Charge every version approved on ``day`` its storage fee for it, at most once each.

    "Approved on the day" is the status at the day's end in the status history, not the
    status now: a run for a past day charges what was stored then.

    The (registration, date) unique row claims the day before any money moves, so a second
    run, or two runs at once, charge nothing more. An owner who cannot pay gets an unpaid row
    and the run goes on.
    """
    run = StorageRun(day=day, already_charged=StorageCharge.objects.filter(date=day).count())
    end_of_day = timezone.make_aware(datetime.datetime.combine(day, datetime.time.max))
    approved = (Registration.objects.with_status_at(end_of_day)
                .filter(status_then=Status.APPROVED).exclude(storage_charges__date=day)
                .select_related("owner").order_by("pk"))
    for registration in approved.iterator(chunk_size=500):
        with transaction.atomic():
            try:
                with transaction.atomic():
                    charge = StorageCharge.objects.create(
                        registration=registration, date=day, amount=0,
                        status=StorageCharge.Status.UNPAID,
                    )
            except IntegrityError as exc:
                if not is_unique_violation(exc):
                    raise
                # Another run charged this version for the day meanwhile.
                run.already_charged += 1
                continue
            try:
                with transaction.atomic():
                    entry = fee_charge(
                        user=registration.owner, fee_type=FeeType.STORAGE,
                        units=registration.size_bytes, model_name=registration.name,
                        model_version=registration.version,
                    )
            except InsufficientFunds as exc:
                charge.amount = exc.extra["needed"]
                charge.save(update_fields=["amount"])
                run.unpaid.append(charge)
                continue
            charge.amount = entry.amount
            charge.status = StorageCharge.Status.PAID
            charge.ledger_entry = entry
            charge.save(update_fields=["amount", "status", "ledger_entry"])
            run.charged += 1
            run.amount += entry.amount
    if run.charged or run.unpaid:
        audit_record(
            action="storage_fees.charged", actor=actor,
            target_type="models_app.storagecharge", target_id=day.isoformat(),
            details={"date": day.isoformat(), "charged": run.charged, "amount": run.amount,
                     "unpaid": [f"{c.registration.name} {c.registration.version}"
                                for c in run.unpaid]},
        )
    return run
