from django import forms

from fees_app.calculator import FeeTerms, schedule_errors
from fees_app.models import FeeSchedule, FeeType
from fees_app.services import MAX_CREDIT


class CreditForm(forms.Form):
    amount = forms.IntegerField(min_value=1, max_value=MAX_CREDIT)
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class FeeScheduleForm(forms.ModelForm):
    """The admin's form for a new schedule version; the service does the install."""

    fee_type = forms.ChoiceField(choices=FeeType.choices)
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = FeeSchedule
        fields = ["fee_type", "method", "base_fee", "unit_fee", "min_fee", "max_fee", "step_size",
                  "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The form's instance is never saved (schedule_install creates the row); inactive, it
        # does not clash with the type's active version during model validation.
        self.instance.is_active = False

    def clean(self):
        data = super().clean()
        fields = ["method", "base_fee", "unit_fee", "min_fee", "max_fee", "step_size"]
        if all(data.get(f) is not None for f in fields):
            for field, message in schedule_errors(FeeTerms(**{f: data[f] for f in fields})).items():
                self.add_error(field, message)
        return data
