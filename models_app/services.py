"""Every write on the registry: registration, status transitions, usage, storage fees."""

import datetime
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from fees_app.models import FeeType
from fees_app.services import fee_charge, fee_quote
from models_app.models import (
    HASH_RE,
    NAME_RE,
    VERSION_RE,
    Category,
    ModelName,
    ModelUser,
    Registration,
    StatusChange,
    StorageCharge,
    UsageStats,
)
from registry_site.audit import audit_record
from registry_site.errors import Conflict, Forbidden, InsufficientFunds, InvalidInput, Unavailable
from registry_site.parameters import get_parameter
from registry_site.roles import is_moderator
from registry_site.stats_cache import statistics_changed

Status = Registration.Status

# "new" is the URL of the registration form (/models/new/), so no model page could live there.
RESERVED_NAMES = {"new"}
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_SHAPE_DIMENSIONS = 16
MAX_DURATION_US = 86_400_000_000
TEXT_LIMITS = {"description": 5000, "license": 100, "architecture": 100, "source_url": 500}

_url_validator = URLValidator(schemes=["http", "https"])


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def registration_errors(*, name, version, hash, size_bytes, parameter_count, category,
                        description, license, source_url, tags, architecture, input_shape,
                        output_shape) -> dict[str, str]:
    """Every field rule of SPEC 3.1, as ``{field: message}``; empty when all is well."""
    errors = {}
    if not isinstance(name, str) or not re.fullmatch(NAME_RE, name):
        errors["name"] = ("3-100 characters: lowercase letters, digits, '-', '_' and '.', "
                          "starting with a letter or digit.")
    elif name in RESERVED_NAMES:
        errors["name"] = f"{name!r} is reserved; choose another name."
    if not isinstance(version, str) or not re.fullmatch(VERSION_RE, version):
        errors["version"] = "1-64 characters: letters, digits, '.', '-', '+' and '_'."
    if not isinstance(hash, str) or not re.fullmatch(HASH_RE, hash):
        errors["hash"] = "The artifact's SHA-256 as 64 hexadecimal characters."
    for field_name, value, limit_name in (("size_bytes", size_bytes, "max_model_size"),
                                          ("parameter_count", parameter_count,
                                           "max_parameter_count")):
        limit = get_parameter(limit_name)
        if not _is_int(value) or value < 0:
            errors[field_name] = "Must be an integer of at least 0."
        elif value > limit:
            errors[field_name] = f"Must be at most {limit} (the {limit_name} parameter)."
    if category not in Category.values:
        errors["category"] = f"Must be one of {', '.join(Category.values)}."
    for field_name, value in (("description", description), ("license", license),
                              ("architecture", architecture), ("source_url", source_url)):
        if not isinstance(value, str):
            errors[field_name] = "Must be text."
        elif len(value) > TEXT_LIMITS[field_name]:
            errors[field_name] = f"Must be at most {TEXT_LIMITS[field_name]} characters."
    if "source_url" not in errors and source_url:
        try:
            _url_validator(source_url)
        except ValidationError:
            errors["source_url"] = "Must be an http:// or https:// URL."
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        errors["tags"] = f"A list of at most {MAX_TAGS} tags."
    elif not all(isinstance(t, str) and 0 < len(t.strip()) <= MAX_TAG_LENGTH for t in tags):
        errors["tags"] = f"Each tag is non-empty text of at most {MAX_TAG_LENGTH} characters."
    for field_name, shape in (("input_shape", input_shape), ("output_shape", output_shape)):
        if (not isinstance(shape, list) or len(shape) > MAX_SHAPE_DIMENSIONS
                or not all(_is_int(d) and d > 0 for d in shape)):
            errors[field_name] = (f"A list of at most {MAX_SHAPE_DIMENSIONS} positive integers, "
                                  "such as [1, 3, 224, 224].")
    return errors


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


def registration_create(*, owner, name: str, version: str, hash: str, size_bytes: int,
                        parameter_count: int, category: str = "NLP", description: str = "",
                        license: str = "", source_url: str = "", tags: list[str] | None = None,
                        architecture: str = "", input_shape: list[int] | None = None,
                        output_shape: list[int] | None = None, source: str = "api"
                        ) -> Registration:
    """Register one version of a model and charge its fee, all or nothing.

    The first version of a name pays the registration fee on its size; a later version pays
    the update fee on the absolute size change against the newest earlier version.
    """
    if get_parameter("registrations_paused"):
        raise Unavailable(
            "Registrations are paused by an emergency action; try again later.",
            code="registrations_paused",
        )
    if tags is None:
        tags = []
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        tags = list(dict.fromkeys(t.strip() for t in tags))
    if isinstance(hash, str):
        hash = hash.lower()
    input_shape = [] if input_shape is None else input_shape
    output_shape = [] if output_shape is None else output_shape
    errors = registration_errors(
        name=name, version=version, hash=hash, size_bytes=size_bytes,
        parameter_count=parameter_count, category=category, description=description,
        license=license, source_url=source_url, tags=tags, architecture=architecture,
        input_shape=input_shape, output_shape=output_shape,
    )
    if errors:
        raise InvalidInput(errors)

    with transaction.atomic():
        # Claim the name, or find its owner. A concurrent first registration of the same name
        # waits on the unique index here until the first one commits or rolls back.
        try:
            with transaction.atomic():
                ModelName.objects.create(name=name, owner=owner)
        except IntegrityError:
            pass
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
            owner=owner, name=name, version=version, hash=hash, size_bytes=size_bytes,
            parameter_count=parameter_count, category=category, description=description,
            license=license, source_url=source_url, tags=tags, architecture=architecture,
            input_shape=input_shape, output_shape=output_shape, registration_fee=entry.amount,
            registered_at=now, updated_at=now,
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
        statistics_changed()
    return registration


def registration_transition(*, registration: Registration, to_status: str, actor=None,
                            source: str, reason: str = "",
                            proposal_id: int | None = None) -> Registration:
    """Move a registration to another status if the rules allow it, with history and audit.

    ``actor`` None means the registry itself acts (an executed governance proposal).
    Refusals raise Conflict (a move the status table does not allow) or Forbidden (the actor
    may not make it); nothing changes then.
    """
    reason = (reason or "").strip()
    if to_status not in Status.values:
        raise InvalidInput({"status": f"Must be one of {', '.join(Status.values)}."})
    if len(reason) > 2000:
        raise InvalidInput({"reason": "Must be at most 2000 characters."})
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
    errors = {}
    if not isinstance(success, bool):
        errors["success"] = "Must be true or false."
    if not _is_int(duration_us) or not 0 <= duration_us <= MAX_DURATION_US:
        errors["duration_us"] = f"Must be an integer between 0 and {MAX_DURATION_US}."
    if errors:
        raise InvalidInput(errors)
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
        except IntegrityError:
            new_user = 0
        UsageStats.objects.filter(pk=current.pk).update(
            total_executions=F("total_executions") + 1,
            successful_executions=F("successful_executions") + (1 if success else 0),
            failed_executions=F("failed_executions") + (0 if success else 1),
            total_fees_collected=F("total_fees_collected") + entry.amount,
            total_duration_us=F("total_duration_us") + duration_us,
            unique_users=F("unique_users") + new_user,
            last_execution=now,
        )
        audit_record(
            action="model.usage_recorded", actor=user, target=current,
            details={"name": current.name, "version": current.version, "success": success,
                     "duration_us": duration_us, "fee": entry.amount},
        )
    return UsageRecord(registration=current, success=success, duration_us=duration_us,
                       fee=entry.amount, balance=entry.balance_after, recorded_at=now)


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
            except IntegrityError:
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
