"""The input of each governance service, defined once: creating a proposal, voting, canceling.

Each service validates its input through one of these serializers, so the API, the pages,
the admin and the demo share every field rule, and every field error is reported at once.
The payload of each proposal type is one serializer in ``PAYLOADS``. Nothing here decides
who may act: the services check that (voting power first, so that a payload's lookups never
answer a user who may not propose).
"""

from collections.abc import Mapping

from rest_framework import serializers

from fees_app.inputs import schedule_errors
from fees_app.models import FeeSchedule, FeeType
from governance_app.models import (
    EmergencyAction,
    Proposal,
    ProposalType,
    Vote,
    VotingPowerCheckpoint,
)
from models_app.models import Registration
from registry_site.inputs import CheckedTogether, Choice
from registry_site.parameters import PARAMETER_SPECS

MAX_VOTING_POWER = 10**15
MAX_REASON_LENGTH = Vote._meta.get_field("reason").max_length
MAX_TITLE_LENGTH = Proposal._meta.get_field("title").max_length
MAX_DESCRIPTION_LENGTH = Proposal._meta.get_field("description").max_length
DEFAULT_STEP_SIZE = 1000
FEE_TERMS = ["method", "base_fee", "unit_fee", "min_fee", "max_fee", "step_size"]
# The status a named version must have for the proposal to make sense (and to be executed).
SUBJECT_STATUS = {
    ProposalType.MODEL_APPROVAL: Registration.Status.PENDING,
    EmergencyAction.SUSPEND_MODEL: Registration.Status.APPROVED,
}


def subject_status(proposal_type: str, payload: dict) -> str | None:
    """The status the proposal's model must have, or None when it names no model."""
    key = payload.get("action") if proposal_type == ProposalType.EMERGENCY else proposal_type
    return SUBJECT_STATUS.get(key)


class Text(serializers.CharField):
    """Text PostgreSQL can store: no NUL (DRF already refuses it) and no lone surrogate."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise serializers.ValidationError("Lone surrogate characters are not allowed.") \
                from None
        return value


class StrictInteger(serializers.IntegerField):
    """A JSON integer: not a string of digits, not a boolean."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class Payload(serializers.Serializer):
    """A proposal payload: its type's fields plus a reason; any other key is an error."""

    proposal_type: str
    reason = Text(max_length=MAX_REASON_LENGTH)

    def to_internal_value(self, data):
        errors = {}
        if isinstance(data, Mapping):
            # The key is echoed in the answer: escape what JSON in UTF-8 cannot carry.
            errors = {str(key).encode("utf-8", "backslashreplace").decode():
                      [f"Unknown field for a {self.proposal_type} proposal."]
                      for key in sorted(set(data) - set(self.fields), key=str)}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**errors, **exc.detail}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def check_registration(self, attrs: dict, status: str) -> None:
        """The named version must be one the proposer may see, in ``status``. A version they
        may not see is reported exactly like one that does not exist."""
        name, version = attrs["name"], attrs["version"]
        current = (Registration.objects.visible_to(self.context["proposer"])
                   .filter(name=name, version=version).values_list("status", flat=True).first())
        if current is None:
            raise serializers.ValidationError({"version": f"No registration {name} {version}."})
        if current != status:
            raise serializers.ValidationError(
                {"version": f"{name} {version} is {current}, not {status}."})


class ModelApprovalPayload(Payload):
    proposal_type = ProposalType.MODEL_APPROVAL
    name = Text(max_length=Registration._meta.get_field("name").max_length)
    version = Text(max_length=Registration._meta.get_field("version").max_length)

    def validate(self, attrs):
        self.check_registration(attrs, SUBJECT_STATUS[self.proposal_type])
        return {"name": attrs["name"], "version": attrs["version"], "reason": attrs["reason"]}


class FeeChangePayload(CheckedTogether, Payload):
    proposal_type = ProposalType.FEE_CHANGE
    fee_type = Choice(FeeType.choices)
    method = Choice(FeeSchedule.Method.choices)
    base_fee = StrictInteger()
    unit_fee = StrictInteger()
    min_fee = StrictInteger()
    max_fee = StrictInteger()
    step_size = StrictInteger(required=False, allow_null=True, default=DEFAULT_STEP_SIZE)

    def cross_field_errors(self, attrs):
        # The fee app's own rules for a schedule (SPEC 4.1), not a copy of them, on the terms
        # that parsed: one answer names every error.
        return schedule_errors({field: attrs[field] for field in FEE_TERMS
                                if attrs.get(field) is not None})

    def validate(self, attrs):
        if attrs.get("step_size") is None:
            attrs["step_size"] = DEFAULT_STEP_SIZE
        terms = {field: attrs[field] for field in FEE_TERMS}
        return {"fee_type": attrs["fee_type"], **terms, "reason": attrs["reason"]}


class ParameterChangePayload(Payload):
    proposal_type = ProposalType.PARAMETER_CHANGE
    parameter = Choice([(name, name) for name in PARAMETER_SPECS])
    value = StrictInteger()

    def to_internal_value(self, data):
        if (isinstance(data, Mapping) and data.get("parameter") == "registrations_paused"
                and isinstance(data.get("value"), bool)):
            # The switch is stored as 0/1; a JSON true/false means the same thing.
            data = {**data, "value": int(data["value"])}
        return super().to_internal_value(data)

    def validate(self, attrs):
        spec = PARAMETER_SPECS[attrs["parameter"]]
        if not spec.minimum <= attrs["value"] <= spec.maximum:
            raise serializers.ValidationError({"value": (
                f"{spec.name} must be between {spec.minimum} and {spec.maximum}.")})
        return {"parameter": attrs["parameter"], "value": attrs["value"],
                "reason": attrs["reason"]}


class EmergencyPayload(Payload):
    proposal_type = ProposalType.EMERGENCY
    action = Choice(EmergencyAction.choices)
    name = Text(max_length=Registration._meta.get_field("name").max_length, required=False,
                allow_blank=True)
    version = Text(max_length=Registration._meta.get_field("version").max_length,
                   required=False, allow_blank=True)

    def validate(self, attrs):
        action = attrs["action"]
        if action != EmergencyAction.SUSPEND_MODEL:
            named = [field for field in ("name", "version") if attrs.get(field)]
            if named:
                raise serializers.ValidationError(
                    dict.fromkeys(named, "Only suspend_model names a model."))
            return {"action": action, "reason": attrs["reason"]}
        missing = [field for field in ("name", "version") if not attrs.get(field)]
        if missing:
            raise serializers.ValidationError(dict.fromkeys(missing, "This field is required."))
        self.check_registration(attrs, SUBJECT_STATUS[action])
        return {"action": action, "name": attrs["name"], "version": attrs["version"],
                "reason": attrs["reason"]}


PAYLOADS = {payload.proposal_type: payload for payload in
            [ModelApprovalPayload, FeeChangePayload, ParameterChangePayload, EmergencyPayload]}

PAYLOAD_HELP = ("Typed by `type`: model_approval {name, version, reason}; fee_change "
                "{fee_type, method, base_fee, unit_fee, min_fee, max_fee, step_size?, reason}; "
                "parameter_change {parameter, value, reason}; emergency {action: suspend_model "
                "| pause_registrations | resume_registrations, name?, version?, reason}.")


class ProposalCreateInput(serializers.Serializer):
    """``proposal_create``'s input; the context holds the ``proposer``."""

    type = Choice(ProposalType.choices)
    title = Text(max_length=MAX_TITLE_LENGTH)
    description = Text(max_length=MAX_DESCRIPTION_LENGTH, required=False, allow_blank=True,
                       default="")
    payload = serializers.DictField(help_text=PAYLOAD_HELP)

    def to_internal_value(self, data):
        # The payload is checked with its type's serializer even when other fields are bad,
        # so one answer names every bad field.
        errors, value = {}, None
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail)
        if isinstance(data, Mapping) and "payload" not in errors:
            kind = data.get("type")
            # Only a string can name a type: a list or an object is the type field's own error.
            payload_class = PAYLOADS.get(kind) if isinstance(kind, str) else None
            if payload_class is not None:
                payload = payload_class(data=data.get("payload"), context=self.context)
                if payload.is_valid():
                    if value is not None:
                        value["payload"] = payload.validated_data
                else:
                    errors["payload"] = payload.errors
        if errors:
            raise serializers.ValidationError(errors)
        return value


class VoteInput(serializers.Serializer):
    """``vote_cast``'s input."""

    choice = Choice(Vote.Choice.choices)
    reason = Text(max_length=MAX_REASON_LENGTH, required=False, allow_blank=True, default="")


class CancelInput(serializers.Serializer):
    """``proposal_cancel``'s input."""

    reason = Text(max_length=Proposal._meta.get_field("cancel_reason").max_length,
                  required=False, allow_blank=True, default="")


class GrantInput(serializers.Serializer):
    """``voting_power_grant``'s input."""

    power = StrictInteger(min_value=0, max_value=MAX_VOTING_POWER, error_messages=dict.fromkeys(
        ["invalid", "min_value", "max_value"],
        f"Must be an integer between 0 and {MAX_VOTING_POWER}."))
    reason = Text(max_length=VotingPowerCheckpoint._meta.get_field("reason").max_length,
                  required=False, allow_blank=True, default="")
