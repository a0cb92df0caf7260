"""The register-a-model form: parses text into values; registration_create checks the rules."""

from django import forms

from models_app.models import Category


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class RegistrationForm(forms.Form):
    name = forms.CharField(help_text="3-100 characters: lowercase letters, digits, '-', '_', "
                                     "'.'. The first registrant of a name owns it.")
    version = forms.CharField(help_text="Semantic versioning recommended, such as 1.0.0.")
    hash = forms.CharField(label="SHA-256", help_text="64 hexadecimal characters.")
    size_bytes = forms.IntegerField(label="Size (bytes)")
    parameter_count = forms.IntegerField(label="Parameter count")
    category = forms.ChoiceField(choices=Category.choices, initial=Category.NLP)
    description = forms.CharField(widget=forms.Textarea, required=False)
    license = forms.CharField(required=False)
    source_url = forms.CharField(label="Source URL", required=False,
                                 help_text="http:// or https:// only.")
    tags = forms.CharField(required=False, help_text="Comma-separated, at most 20.")
    architecture = forms.CharField(required=False)
    input_shape = forms.CharField(required=False, help_text="Comma-separated positive "
                                                            "integers, such as 1, 3, 224, 224.")
    output_shape = forms.CharField(required=False, help_text="Comma-separated positive "
                                                             "integers.")

    def clean_tags(self):
        return _split(self.cleaned_data["tags"])

    def _shape(self, field: str) -> list[int]:
        try:
            return [int(part) for part in _split(self.cleaned_data[field])]
        except ValueError:
            raise forms.ValidationError("Comma-separated integers, such as 1, 3, 224, 224.") \
                from None

    def clean_input_shape(self):
        return self._shape("input_shape")

    def clean_output_shape(self):
        return self._shape("output_shape")


class DeprecateForm(forms.Form):
    version = forms.CharField()
    reason = forms.CharField(required=False, max_length=2000)
