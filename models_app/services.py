"""Every write on the registry: registration, status transitions, usage."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from fees_app.models import FeeType
from fees_app.services import fee_charge
from models_app.models import Registration, StatusChange, UsageStats
from registry_site.audit import audit_record
from registry_site.errors import Conflict, Forbidden, InvalidInput, Unavailable
from registry_site.parameters import get_parameter
from registry_site.roles import is_moderator

Status = Registration.Status


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
    errors = {}
    max_size = get_parameter("max_model_size")
    if size_bytes > max_size:
        errors["size_bytes"] = f"Must be at most {max_size} (the max_model_size parameter)."
    max_params = get_parameter("max_parameter_count")
    if parameter_count > max_params:
        errors["parameter_count"] = (
            f"Must be at most {max_params} (the max_parameter_count parameter)."
        )
    if errors:
        raise InvalidInput(errors)

    with transaction.atomic():
        # Lock the name's existing versions: two first registrations of one name, or two new
        # versions, queue up here instead of both charging a fee.
        previous = list(
            Registration.objects.select_for_update().filter(name=name)
            .order_by("-registered_at", "-id").only("id", "owner_id", "version", "size_bytes")
        )
        if previous:
            if previous[0].owner_id != owner.pk:
                raise Forbidden(
                    f"The name {name!r} belongs to another registrant; only its owner may "
                    "register new versions.", code="not_owner",
                )
            if any(p.version == version for p in previous):
                raise Conflict(f"{name} {version} is already registered.", code="duplicate")
            fee_type, units = FeeType.UPDATE, abs(size_bytes - previous[0].size_bytes)
        else:
            fee_type, units = FeeType.REGISTRATION, size_bytes
        try:
            with transaction.atomic():
                registration = Registration.objects.create(
                    owner=owner, name=name, version=version, hash=hash, size_bytes=size_bytes,
                    parameter_count=parameter_count, category=category,
                    description=description, license=license, source_url=source_url,
                    tags=tags or [], architecture=architecture, input_shape=input_shape or [],
                    output_shape=output_shape or [],
                )
        except IntegrityError:
            # A concurrent first registration of the same name won the race.
            raise Conflict(f"{name} {version} is already registered.", code="duplicate") from None
        entry = fee_charge(user=owner, fee_type=fee_type, units=units, model_name=name,
                           model_version=version)
        registration.registration_fee = entry.amount
        registration.save(update_fields=["registration_fee"])
        UsageStats.objects.create(registration=registration)
        StatusChange.objects.create(
            registration=registration, from_status="", to_status=Status.PENDING, actor=owner,
            source=source, reason="Registered",
        )
        audit_record(
            action="model.registered", actor=owner, target=registration,
            details={"name": name, "version": version, "fee_type": fee_type,
                     "fee": entry.amount, "size_bytes": size_bytes},
        )
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
    registration.status = current.status
    registration.updated_at = current.updated_at
    return registration
