from django import forms
from django.conf import settings

from fees_app.models import FeeSchedule, FeeType
from governance_app.models import EmergencyAction, ProposalType, Vote
from governance_app.payloads import DEFAULT_STEP_SIZE, FEE_TERMS, MAX_REASON_LENGTH
from governance_app.selectors import approved_registrations, pending_registrations
from governance_app.services import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH
from models_app.models import Registration
from registry_site.models import Scope
from registry_site.parameters import PARAMETER_SPECS
from registry_site.roles import allowed_scopes


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for.")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, required=False,
        help_text="None ticked: every scope you may hold.",
    )
    expires_in = forms.IntegerField(
        min_value=1, max_value=settings.TOKEN_MAX_TTL_SECONDS, initial=settings.TOKEN_TTL_SECONDS,
        help_text="Seconds until the token expires.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        permitted = set(allowed_scopes(user))
        self.fields["scopes"].choices = [c for c in Scope.choices if c[0] in permitted]


class VoteForm(forms.Form):
    choice = forms.ChoiceField(choices=Vote.Choice.choices, widget=forms.RadioSelect)
    reason = forms.CharField(
        max_length=MAX_REASON_LENGTH, required=False,
        widget=forms.Textarea(attrs={"rows": 2}), help_text="Optional; shown with your vote.",
    )


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=MAX_REASON_LENGTH, required=False,
                             widget=forms.Textarea(attrs={"rows": 2}))


class ProposalForm(forms.Form):
    """Fields every proposal has; each subclass adds its type's payload fields.

    The form only collects input: ``payload()`` maps its fields to the service's payload and
    ``add_service_errors`` puts the service's verdict back on the right fields.
    """

    proposal_type: str
    title = forms.CharField(max_length=MAX_TITLE_LENGTH)
    description = forms.CharField(
        max_length=MAX_DESCRIPTION_LENGTH, required=False,
        widget=forms.Textarea(attrs={"rows": 5}), help_text="Context for the voters.",
    )
    reason = forms.CharField(
        max_length=MAX_REASON_LENGTH, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the history of the change when the proposal is executed.",
    )
    # Payload fields that the form shows as one field (e.g. name + version as a registration).
    payload_field_map: dict[str, str] = {}

    def add_service_errors(self, exc) -> None:
        for key, messages in exc.extra.get("fields", {}).items():
            field = key.removeprefix("payload.")
            field = self.payload_field_map.get(field, field)
            for message in messages:
                self.add_error(field if field in self.fields else None, message)


class ModelApprovalForm(ProposalForm):
    proposal_type = ProposalType.MODEL_APPROVAL
    registration = forms.ModelChoiceField(
        queryset=Registration.objects.none(), empty_label="Choose a pending model version",
        help_text="Executing the proposal approves this version.",
    )
    field_order = ["registration", "title", "description", "reason"]
    payload_field_map = {"name": "registration", "version": "registration"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["registration"].queryset = pending_registrations()

    def payload(self) -> dict:
        registration = self.cleaned_data["registration"]
        return {"name": registration.name, "version": registration.version,
                "reason": self.cleaned_data["reason"]}


class FeeChangeForm(ProposalForm):
    proposal_type = ProposalType.FEE_CHANGE
    fee_type = forms.ChoiceField(choices=FeeType.choices)
    method = forms.ChoiceField(choices=FeeSchedule.Method.choices)
    base_fee = forms.IntegerField(min_value=0)
    unit_fee = forms.IntegerField(min_value=0)
    min_fee = forms.IntegerField(min_value=0)
    max_fee = forms.IntegerField(min_value=0)
    step_size = forms.IntegerField(min_value=1, initial=DEFAULT_STEP_SIZE, required=False,
                                   help_text="Units per step (the step method only; "
                                             f"{DEFAULT_STEP_SIZE} when left empty).")
    field_order = ["fee_type", "method", "base_fee", "unit_fee", "min_fee", "max_fee",
                   "step_size", "title", "description", "reason"]

    def payload(self) -> dict:
        return {field: self.cleaned_data[field] for field in
                ["fee_type", *FEE_TERMS, "reason"]}


class ParameterChangeForm(ProposalForm):
    proposal_type = ProposalType.PARAMETER_CHANGE
    parameter = forms.ChoiceField(choices=[
        (spec.name, f"{spec.name} ({spec.minimum:,} to {spec.maximum:,})")
        for spec in PARAMETER_SPECS.values()
    ])
    value = forms.IntegerField()
    field_order = ["parameter", "value", "title", "description", "reason"]

    def payload(self) -> dict:
        return {field: self.cleaned_data[field] for field in ["parameter", "value", "reason"]}


class EmergencyForm(ProposalForm):
    proposal_type = ProposalType.EMERGENCY
    action = forms.ChoiceField(choices=EmergencyAction.choices)
    registration = forms.ModelChoiceField(
        queryset=Registration.objects.none(), required=False,
        empty_label="(none: pausing or resuming registrations)",
        help_text="The approved model version to suspend (suspend_model only).",
    )
    field_order = ["action", "registration", "title", "description", "reason"]
    payload_field_map = {"name": "registration", "version": "registration"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["registration"].queryset = approved_registrations()

    def payload(self) -> dict:
        payload = {"action": self.cleaned_data["action"], "reason": self.cleaned_data["reason"]}
        registration = self.cleaned_data.get("registration")
        if registration is not None:
            payload.update(name=registration.name, version=registration.version)
        elif payload["action"] == EmergencyAction.SUSPEND_MODEL:
            # Let the service name the missing fields, mapped back onto "registration".
            payload.update(name="", version="")
        return payload


PROPOSAL_FORMS = {form.proposal_type: form for form in
                  [ModelApprovalForm, FeeChangeForm, ParameterChangeForm, EmergencyForm]}
