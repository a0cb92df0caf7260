"""The pages' forms: they render fields and parse text; the rules are in models_app.inputs."""

from django import forms

from models_app.inputs import (
    EDITABLE_FIELDS,
    RegistrationEditInput,
    RegistrationInput,
    StatusChangeInput,
)
from models_app.models import Category, Registration
from registry_site.inputs import InputForm


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _help(field: str) -> str:
    return Registration._meta.get_field(field).help_text


class RegistrationForm(InputForm):
    """/models/new/: every field is text here; RegistrationInput checks all of them at once."""

    input_class = RegistrationInput

    name = forms.CharField(required=False, strip=False, help_text=_help("name"))
    version = forms.CharField(required=False, strip=False, help_text=_help("version"))
    hash = forms.CharField(label="SHA-256", required=False, help_text=_help("hash"))
    size_bytes = forms.CharField(label="Size (bytes)", required=False)
    parameter_count = forms.CharField(label="Parameter count", required=False)
    category = forms.CharField(widget=forms.Select(choices=Category.choices),
                               initial=Category.NLP, required=False)
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

    def to_input(self, text: dict) -> dict:
        data = super().to_input(text)
        for field in ("tags", "input_shape", "output_shape"):
            if field in data:
                data[field] = _split(data[field])
        return data


class DeprecateForm(InputForm):
    """The owner's deprecate button on the model page."""

    input_class = StatusChangeInput

    version = forms.CharField(widget=forms.HiddenInput, required=False)
    reason = forms.CharField(required=False)

    def to_input(self, text: dict) -> dict:
        return {**super().to_input(text), "status": Registration.Status.DEPRECATED}


class EditForm(InputForm):
    """/models/<name>/edit/: a version's description, tags, license and source URL.

    Every field is sent, so an emptied field clears it; ``etag`` is the version as the form
    showed it, so an edit made meanwhile by someone else is not silently overwritten.
    """

    input_class = RegistrationEditInput

    version = forms.CharField(widget=forms.HiddenInput)
    etag = forms.CharField(widget=forms.HiddenInput)
    description = forms.CharField(widget=forms.Textarea, required=False)
    license = forms.CharField(required=False)
    source_url = forms.CharField(label="Source URL", required=False,
                                 help_text="http:// or https:// only.")
    tags = forms.CharField(required=False, help_text="Comma-separated, at most 20.")
    reason = forms.CharField(required=False, help_text="Required when a moderator edits "
                                                       "someone else's version.")

    def to_input(self, text: dict) -> dict:
        data = {name: text.get(name) or "" for name in (*EDITABLE_FIELDS, "reason")}
        data["tags"] = _split(data["tags"])
        return data
