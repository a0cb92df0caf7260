from django import forms

from fees_app.models import FeeSchedule, FeeType
from governance_app.inputs import DEFAULT_STEP_SIZE, FEE_TERMS
from governance_app.models import EmergencyAction, ProposalType, Vote
from models_app.models import Registration
from registry_site.parameters import PARAMETER_SPECS


class VoteForm(forms.Form):
    """Collects a vote; the rules are VoteInput's, applied by vote_cast."""

    choice = forms.CharField(required=False, widget=forms.RadioSelect(choices=Vote.Choice.choices))
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Optional; shown with your vote.")


class IntegerText(forms.CharField):
    """Text that becomes an int when it is one; anything else goes on as typed, so the
    service's input rules (not the form) report it, together with every other error."""

    def to_python(self, value):
        value = super().to_python(value)
        if value == "":
            return None
        try:
            return int(value)
        except ValueError:
            return value


def add_service_errors(form, exc) -> None:
    """Put an InvalidInput's fields on the form's fields (``payload.x`` on ``x``)."""
    for key, messages in exc.extra.get("fields", {}).items():
        field = key.removeprefix("payload.")
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


class ProposalForm(forms.Form):
    """Fields every proposal has; each subclass adds its type's payload fields.

    The form only collects and parses input (integers from text); every rule is in
    governance_app.inputs, applied by proposal_create, so the page reports the same errors
    as the API, all at once.
    """

    proposal_type: str
    title = forms.CharField(required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}),
                                  help_text="Context for the voters.")
    reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the history of the change when the proposal is executed.",
    )
    payload_fields: list[str] = []
    # The status the search lists versions in (model proposals only).
    search_status: str | None = None

    def payload(self) -> dict:
        data = {field: self.cleaned_data[field] for field in self.payload_fields}
        return {key: value for key, value in data.items() if value not in (None, "")} | {
            "reason": self.cleaned_data["reason"]}


class ModelApprovalForm(ProposalForm):
    proposal_type = ProposalType.MODEL_APPROVAL
    name = forms.CharField(required=False, help_text="A pending model version you may see: "
                           "your own, or any for a moderator. Search for it above.")
    version = forms.CharField(required=False, help_text="Executing the proposal approves "
                                                        "this version.")
    field_order = ["name", "version", "title", "description", "reason"]
    payload_fields = ["name", "version"]
    search_status = Registration.Status.PENDING


class FeeChangeForm(ProposalForm):
    proposal_type = ProposalType.FEE_CHANGE
    fee_type = forms.CharField(required=False, widget=forms.Select(choices=FeeType.choices))
    method = forms.CharField(required=False,
                             widget=forms.Select(choices=FeeSchedule.Method.choices))
    base_fee = IntegerText(required=False)
    unit_fee = IntegerText(required=False)
    min_fee = IntegerText(required=False)
    max_fee = IntegerText(required=False)
    step_size = IntegerText(initial=DEFAULT_STEP_SIZE, required=False,
                                   help_text="Units per step (the step method only; "
                                             f"{DEFAULT_STEP_SIZE} when left empty).")
    field_order = ["fee_type", "method", "base_fee", "unit_fee", "min_fee", "max_fee",
                   "step_size", "title", "description", "reason"]
    payload_fields = ["fee_type", *FEE_TERMS]


class ParameterChangeForm(ProposalForm):
    proposal_type = ProposalType.PARAMETER_CHANGE
    parameter = forms.CharField(required=False, widget=forms.Select(choices=[
        (spec.name, f"{spec.name} ({spec.minimum:,} to {spec.maximum:,})")
        for spec in PARAMETER_SPECS.values()
    ]))
    value = IntegerText(required=False)
    field_order = ["parameter", "value", "title", "description", "reason"]
    payload_fields = ["parameter", "value"]


class EmergencyForm(ProposalForm):
    proposal_type = ProposalType.EMERGENCY
    action = forms.CharField(required=False,
                             widget=forms.Select(choices=EmergencyAction.choices))
    name = forms.CharField(required=False, help_text="suspend_model only: the approved model "
                                                     "to suspend. Search for it above.")
    version = forms.CharField(required=False, help_text="suspend_model only.")
    field_order = ["action", "name", "version", "title", "description", "reason"]
    payload_fields = ["action", "name", "version"]
    search_status = Registration.Status.APPROVED


PROPOSAL_FORMS = {form.proposal_type: form for form in
                  [ModelApprovalForm, FeeChangeForm, ParameterChangeForm, EmergencyForm]}
