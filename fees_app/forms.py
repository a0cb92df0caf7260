"""The admin's forms for fees: they render fields; the rules are in fees_app.inputs."""

from django import forms

from fees_app.inputs import CreditInput, ScheduleInput
from fees_app.models import FeeSchedule, FeeType
from registry_site.inputs import InputForm


class CreditForm(InputForm):
    input_class = CreditInput

    amount = forms.CharField(required=False)
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class FeeScheduleForm(InputForm, forms.ModelForm):
    """The admin's form for a new schedule version; schedule_install creates the row."""

    input_class = ScheduleInput

    fee_type = forms.CharField(widget=forms.Select(choices=FeeType.choices), required=False)
    method = forms.CharField(widget=forms.Select(choices=FeeSchedule.Method.choices),
                             required=False)
    base_fee = forms.CharField(required=False)
    unit_fee = forms.CharField(required=False)
    min_fee = forms.CharField(required=False)
    max_fee = forms.CharField(required=False)
    step_size = forms.CharField(required=False)
    reason = forms.CharField(required=True, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Recorded with the version and in the audit trail.")

    class Meta:
        model = FeeSchedule
        fields = ["fee_type", "method", "base_fee", "unit_fee", "min_fee", "max_fee", "step_size",
                  "reason"]

    def _post_clean(self):
        # The instance is never saved or validated here: the service checks the input and
        # writes the row.
        pass
