"""The input of every fees service: the one place for its field rules.

Bounds stored in a column come from the model fields; the API, the admin, the command and the
services all validate through these serializers.
"""

import dataclasses
from collections.abc import Mapping

from rest_framework import serializers

from fees_app.calculator import FeeTerms
from fees_app.models import FeeSchedule, FeeType, LedgerEntry
from registry_site.inputs import CheckedTogether, Choice, ModelInput

MAX_CREDIT = 10**15
# Units stored on a ledger row; far above any real size, far below the column's limit.
MAX_UNITS = 10**15


class FeeQuoteInput(serializers.Serializer):
    """What a fee would cost: fee_quote (and through it every fee debit)."""

    fee_type = Choice(choices=FeeType.choices)
    units = serializers.IntegerField(min_value=0, max_value=MAX_UNITS)


class FeeCalculateInput(FeeQuoteInput):
    """POST /api/v1/fees/calculate/: units, or the size in bytes of a size-based fee."""

    units = serializers.IntegerField(min_value=0, max_value=MAX_UNITS, required=False)
    size_bytes = serializers.IntegerField(min_value=0, max_value=MAX_UNITS, required=False)

    def validate(self, attrs):
        if "units" in attrs and "size_bytes" in attrs:
            raise serializers.ValidationError({"units": "Give units or size_bytes, not both."})
        if "units" not in attrs and "size_bytes" not in attrs:
            raise serializers.ValidationError({"units": "Give units or size_bytes."})
        return attrs


class ScheduleTermsInput(CheckedTogether, ModelInput):
    """A schedule's formula: each bound from its model field, then how the fees relate."""

    class Meta:
        model = FeeSchedule
        fields = ["method", "base_fee", "unit_fee", "min_fee", "max_fee", "step_size"]
        extra_kwargs = {"step_size": {"required": True}}
        # Versions are numbered under a lock by the service, never by the input.
        validators = []

    def cross_field_errors(self, attrs):
        low, base, high = (attrs.get(field) for field in ("min_fee", "base_fee", "max_fee"))
        if low is not None and high is not None and low > high:
            # Then no base fee could lie between them: one error says it.
            return {"min_fee": "Must not exceed max_fee."}
        if base is not None and ((low is not None and base < low)
                                 or (high is not None and base > high)):
            return {"base_fee": "Must lie between min_fee and max_fee."}
        return {}


def schedule_errors(terms: FeeTerms | Mapping) -> dict[str, str]:
    """Why a schedule's terms are invalid, keyed by field, every error at once; empty when
    they are valid. Given a mapping, only the terms in it are checked (governance checks the
    terms of a fee_change payload that parsed)."""
    data = dataclasses.asdict(terms) if isinstance(terms, FeeTerms) else terms
    serializer = ScheduleTermsInput(data=data, partial=not isinstance(terms, FeeTerms))
    if serializer.is_valid():
        return {}
    return {field: str(errors[0]) for field, errors in serializer.errors.items()}


class ScheduleInput(ScheduleTermsInput):
    """Installing a new schedule version: schedule_install, the admin and governance."""

    class Meta(ScheduleTermsInput.Meta):
        fields = ["fee_type", *ScheduleTermsInput.Meta.fields, "reason"]


class CreditInput(serializers.Serializer):
    """A top-up: account_credit, the admin's credit action and the credit_account command."""

    amount = serializers.IntegerField(min_value=1, max_value=MAX_CREDIT)
    reason = serializers.CharField(max_length=LedgerEntry._meta.get_field("reason").max_length)
