"""The typed payload of each proposal type: what it must contain, checked at creation.

``clean_payload`` returns the payload in its stored form (known keys only, defaults filled
in) or raises InvalidInput naming each bad field as ``payload.<field>``.
"""

from fees_app.calculator import FeeTerms, schedule_errors
from fees_app.models import FeeSchedule, FeeType
from governance_app.models import EmergencyAction, ProposalType
from models_app.models import Registration
from registry_site.errors import InvalidInput
from registry_site.parameters import PARAMETER_SPECS

MAX_REASON_LENGTH = 2000
DEFAULT_STEP_SIZE = 1000
FEE_TERMS = ["method", "base_fee", "unit_fee", "min_fee", "max_fee", "step_size"]

FIELDS = {
    ProposalType.MODEL_APPROVAL: {"name", "version", "reason"},
    ProposalType.FEE_CHANGE: {"fee_type", *FEE_TERMS, "reason"},
    ProposalType.PARAMETER_CHANGE: {"parameter", "value", "reason"},
    ProposalType.EMERGENCY: {"action", "name", "version", "reason"},
}


class _Errors(dict):
    def add(self, field: str, message: str) -> None:
        self.setdefault(f"payload.{field}", message)


def _text(payload: dict, field: str, errors: _Errors, *, max_length: int) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value.strip():
        errors.add(field, "This field is required.")
        return ""
    value = value.strip()
    if len(value) > max_length:
        errors.add(field, f"Must be at most {max_length} characters.")
    elif "\x00" in value:
        # PostgreSQL cannot store NUL in text or jsonb.
        errors.add(field, "Null characters are not allowed.")
    return value


def _integer(payload: dict, field: str, errors: _Errors) -> int | None:
    value = payload.get(field)
    if value is None:
        errors.add(field, "This field is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(field, "Must be an integer.")
        return None
    return value


def _registration(payload: dict, errors: _Errors, *, status: str) -> dict:
    name = _text(payload, "name", errors, max_length=100)
    version = _text(payload, "version", errors, max_length=64)
    if name and version:
        current = (Registration.objects.filter(name=name, version=version)
                   .values_list("status", flat=True).first())
        if current is None:
            errors.add("version", f"No registration {name} {version}.")
        elif current != status:
            errors.add("version", f"{name} {version} is {current}, not {status}.")
    return {"name": name, "version": version}


def _model_approval(payload: dict, errors: _Errors) -> dict:
    return _registration(payload, errors, status=Registration.Status.PENDING)


def _fee_change(payload: dict, errors: _Errors) -> dict:
    fee_type = payload.get("fee_type")
    if fee_type not in FeeType.values:
        errors.add("fee_type", f"Must be one of {', '.join(FeeType.values)}.")
    method = payload.get("method")
    if method not in FeeSchedule.Method.values:
        errors.add("method", f"Must be one of {', '.join(FeeSchedule.Method.values)}.")
    terms = {"method": method}
    for field in ["base_fee", "unit_fee", "min_fee", "max_fee"]:
        terms[field] = _integer(payload, field, errors)
    terms["step_size"] = (DEFAULT_STEP_SIZE if payload.get("step_size") is None
                          else _integer(payload, "step_size", errors))
    if not errors:
        for field, message in schedule_errors(FeeTerms(**terms)).items():
            errors.add(field, message)
    return {"fee_type": fee_type, **terms}


def _parameter_change(payload: dict, errors: _Errors) -> dict:
    name = payload.get("parameter")
    spec = PARAMETER_SPECS.get(name) if isinstance(name, str) else None
    if spec is None:
        errors.add("parameter", f"Must be one of {', '.join(PARAMETER_SPECS)}.")
    if name == "registrations_paused" and isinstance(payload.get("value"), bool):
        # The switch is stored as 0/1; a JSON true/false means the same thing.
        payload = {**payload, "value": int(payload["value"])}
    value = _integer(payload, "value", errors)
    if spec is not None and value is not None and not spec.minimum <= value <= spec.maximum:
        errors.add("value", f"{name} must be between {spec.minimum} and {spec.maximum}.")
    return {"parameter": name, "value": value}


def _emergency(payload: dict, errors: _Errors) -> dict:
    action = payload.get("action")
    if action not in EmergencyAction.values:
        errors.add("action", f"Must be one of {', '.join(EmergencyAction.values)}.")
        return {"action": action}
    if action == EmergencyAction.SUSPEND_MODEL:
        # Only an approved version can be suspended (SPEC 3.2).
        target = _registration(payload, errors, status=Registration.Status.APPROVED)
        return {"action": action, **target}
    for field in ("name", "version"):
        if payload.get(field) not in (None, ""):
            errors.add(field, "Only suspend_model names a model.")
    return {"action": action}


CLEANERS = {
    ProposalType.MODEL_APPROVAL: _model_approval,
    ProposalType.FEE_CHANGE: _fee_change,
    ProposalType.PARAMETER_CHANGE: _parameter_change,
    ProposalType.EMERGENCY: _emergency,
}


def clean_payload(proposal_type: str, payload) -> dict:
    """Validate ``payload`` for ``proposal_type``; return its stored form."""
    if proposal_type not in ProposalType.values:
        raise InvalidInput({"type": f"Must be one of {', '.join(ProposalType.values)}."})
    if not isinstance(payload, dict):
        raise InvalidInput({"payload": "Must be an object."})
    errors = _Errors()
    for key in sorted(set(payload) - FIELDS[proposal_type]):
        errors.add(key, f"Unknown field for a {proposal_type} proposal.")
    cleaned = CLEANERS[proposal_type](payload, errors)
    cleaned["reason"] = _text(payload, "reason", errors, max_length=MAX_REASON_LENGTH)
    if errors:
        raise InvalidInput(dict(errors))
    return cleaned
