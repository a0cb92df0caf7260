"""Every write on the registry: registration, status transitions, usage, storage fees."""

import datetime
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from fees_app.calculator import MAX_STORED_INT
from fees_app.models import FeeType
from fees_app.services import fee_charge, fee_quote
from models_app.inputs import RegistrationInput, TransitionInput, UsageInput
from models_app.models import (
    ModelName,
    ModelUser,
    Registration,
    StatusChange,
    StorageCharge,
    UsageStats,
)
from models_app.read_cache import model_changed
from registry_site.audit import audit_record
from registry_site.errors import Conflict, Forbidden, InsufficientFunds, InvalidInput, Unavailable
from registry_site.inputs import validated
from registry_site.integrity import is_unique_violation
from registry_site.parameters import get_parameter
from registry_site.roles import is_moderator
from registry_site.stats_cache import statistics_changed

Status = Registration.Status



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
        try:
            with transaction.atomic():
                ModelName.objects.create(name=name, owner=owner)
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
        # The name row is the lock: every registration of this name queues up behind it.
        claimed = ModelName.objects.select_for_update().get(name=name)
        if claimed.owner_id != owner.pk:
            raise Forbidden(
                f"The name {name!r} belongs to another registrant; only its owner may "
                "register new versions.", code="not_owner",
            )
        previous = list(
            Registration.objects.filter(name=name).order_by("-registered_at", "-id")
            .values_list("version", "size_bytes")
        )
        if any(v == version for v, _ in previous):
            raise Conflict(f"{name} {version} is already registered.", code="duplicate")
        fee_type, units = _fee_basis(previous[0][1] if previous else None, size_bytes)
        entry = fee_charge(user=owner, fee_type=fee_type, units=units, model_name=name,
                           model_version=version)
        now = timezone.now()
        registration = Registration.objects.create(
            owner=owner, **data, registration_fee=entry.amount, registered_at=now,
            updated_at=now,
        )
        UsageStats.objects.create(registration=registration)
        StatusChange.objects.create(
            registration=registration, from_status="", to_status=Status.PENDING, actor=owner,
            source=source, reason="Registered", created_at=now,
        )
        audit_record(
            action="model.registered", actor=owner, target=registration,
            details={"name": name, "version": version, "fee_type": fee_type,
                     "fee": entry.amount, "size_bytes": size_bytes, "source": source},
        )
        # fee_charge above has already marked the statistics as changed at commit.
        model_changed(name)
    return registration


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


@dataclass(frozen=True)
class UsageRecord:
    registration: Registration
    success: bool
    duration_us: int
    fee: int
    balance: int
    recorded_at: datetime.datetime


def usage_record(*, registration: Registration, user, success: bool,
                 duration_us: int) -> UsageRecord:
    """Record one execution of an approved version and charge the caller the execution fee.

    Failed executions pay too: the fee pays for the record. Counters move with F() so
    concurrent records never lose an update.
    """
    data = validated(UsageInput, {"success": success, "duration_us": duration_us})
    success, duration_us = data["success"], data["duration_us"]
    with transaction.atomic():
        # Locked so a suspension cannot slip in between the status check and the record.
        current = Registration.objects.select_for_update().get(pk=registration.pk)
        if current.status != Status.APPROVED:
            raise Conflict(
                f"{current} is {current.status}; only approved versions can be used.",
                code="not_approved", status=current.status,
            )
        entry = fee_charge(user=user, fee_type=FeeType.EXECUTION, units=1,
                           model_name=current.name, model_version=current.version)
        now = timezone.now()
        try:
            with transaction.atomic():
                ModelUser.objects.create(registration=current, user=user, first_used_at=now)
            new_user = 1
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            new_user = 0
        _count_usage(current, {
            "total_executions": 1,
            "successful_executions": 1 if success else 0,
            "failed_executions": 0 if success else 1,
            "total_fees_collected": entry.amount,
            "total_duration_us": duration_us,
            "unique_users": new_user,
        }, now=now)
        model_changed(current.name)  # its total_executions is on the model's page
        audit_record(
            action="model.usage_recorded", actor=user, target=current,
            details={"name": current.name, "version": current.version, "success": success,
                     "duration_us": duration_us, "fee": entry.amount},
        )
    return UsageRecord(registration=current, success=success, duration_us=duration_us,
                       fee=entry.amount, balance=entry.balance_after, recorded_at=now)


def _count_usage(registration: Registration, increments: dict[str, int], *, now) -> None:
    """Add ``increments`` to the usage counters, refusing any sum a 64-bit column cannot hold.

    The caller holds the registration's row lock, so no other record moves these counters
    between the check and the update. Refused, the operation rolls back (fee included) and
    later records of smaller amounts still succeed.
    """
    usage = UsageStats.objects.get(pk=registration.pk)
    full = [name for name, amount in increments.items()
            if getattr(usage, name) > MAX_STORED_INT - amount]
    if full:
        raise Conflict(
            f"The usage counters of {registration} are full ({', '.join(full)} would pass "
            f"{MAX_STORED_INT}); this record is refused and nothing was charged.",
            code="counter_overflow", counters=full,
        )
    UsageStats.objects.filter(pk=registration.pk).update(
        **{name: F(name) + amount for name, amount in increments.items()}, last_execution=now,
    )


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
