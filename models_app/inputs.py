"""The input of every registry service: the one place for its field rules (SPEC 3.1).

Lengths, patterns and choices come from the model fields; the API, the pages, the admin and
the services all validate through these serializers.
"""

from urllib.parse import urlsplit

from rest_framework import serializers

from models_app.models import Registration, StatusChange
from registry_site.inputs import Choice, ModelInput
from registry_site.parameters import get_parameter

# "new" is the URL of the registration form (/models/new/), so no model page could live there.
RESERVED_NAMES = {"new"}
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_SHAPE_DIMENSIONS = 16
MAX_DURATION_US = 86_400_000_000

Status = Registration.Status


def _shape_field(**kwargs):
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1), max_length=MAX_SHAPE_DIMENSIONS,
        required=False, help_text=f"At most {MAX_SHAPE_DIMENSIONS} positive integers, such as "
                                  "[1, 3, 224, 224].", **kwargs)


class RegistrationInput(ModelInput):
    """Registering a version: registration_create, POST /api/v1/models/ and /models/new/."""

    tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH), max_length=MAX_TAGS,
        required=False, help_text=f"At most {MAX_TAGS} tags of at most {MAX_TAG_LENGTH} "
                                  "characters.")
    input_shape = _shape_field()
    output_shape = _shape_field()

    class Meta:
        model = Registration
        fields = ["name", "version", "hash", "size_bytes", "parameter_count", "category",
                  "description", "license", "source_url", "tags", "architecture",
                  "input_shape", "output_shape"]
        extra_kwargs = {"name": {"trim_whitespace": False},
                        "version": {"trim_whitespace": False},
                        "source_url": {"help_text": "http:// or https:// only."}}
        # (name, version) is checked under the name's lock by the service, answering 409.
        validators = []

    def validate_name(self, value: str) -> str:
        if value in RESERVED_NAMES:
            raise serializers.ValidationError(f"{value!r} is reserved; choose another name.")
        return value

    def validate_hash(self, value: str) -> str:
        return value.lower()

    @staticmethod
    def _within(value: int, parameter: str) -> int:
        limit = get_parameter(parameter)
        if value > limit:
            raise serializers.ValidationError(f"Must be at most {limit} (the {parameter} "
                                              "parameter).")
        return value

    def validate_size_bytes(self, value: int) -> int:
        return self._within(value, "max_model_size")

    def validate_parameter_count(self, value: int) -> int:
        return self._within(value, "max_parameter_count")

    def validate_source_url(self, value: str) -> str:
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise serializers.ValidationError("Must be an http:// or https:// URL.")
        return value

    def validate_tags(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


EDITABLE_FIELDS = ("description", "tags", "license", "source_url")
READ_ONLY_MESSAGE = ("Cannot be edited; an edit changes description, tags, license or "
                     "source_url (a new version changes the rest).")


class RegistrationEditInput(RegistrationInput):
    """Editing a version's metadata: registration_update, PATCH .../versions/{version}/.

    The fields' rules are the registration's (this is RegistrationInput with only the fields
    an edit may change); only the fields sent change.
    """

    reason = serializers.CharField(
        required=False, default="", allow_blank=True,
        max_length=StatusChange._meta.get_field("reason").max_length,
        help_text="Why; required when a moderator edits someone else's version.")

    class Meta(RegistrationInput.Meta):
        fields = [*EDITABLE_FIELDS, "reason"]

    def to_internal_value(self, data):
        # A field an edit cannot change (name, version, hash...) is refused, not ignored: the
        # caller would believe it changed.
        unknown = sorted(set(data) - set(self.fields), key=str) if isinstance(data, dict) else []
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not unknown:
                raise
            raise serializers.ValidationError(
                {**{str(key): [READ_ONLY_MESSAGE] for key in unknown}, **exc.detail}) from None
        if unknown:
            raise serializers.ValidationError({str(key): [READ_ONLY_MESSAGE] for key in unknown})
        return value

    def validate(self, attrs):
        if not any(name in attrs for name in EDITABLE_FIELDS):
            raise serializers.ValidationError(
                {"non_field_errors": [f"Send at least one of {', '.join(EDITABLE_FIELDS)}."]})
        return attrs


class TransitionInput(serializers.Serializer):
    """Moving a version to another status: registration_transition, the API and the admin."""

    status = Choice(choices=Status.choices)
    reason = serializers.CharField(
        required=False, default="", allow_blank=True,
        max_length=StatusChange._meta.get_field("reason").max_length,
        help_text="Required for moderator actions.")


class StatusChangeInput(TransitionInput):
    """POST /api/v1/models/{name}/status/: which version, and the transition."""

    version = serializers.CharField()


class UsageInput(serializers.Serializer):
    """One execution: usage_record and POST /api/v1/models/{name}/usage/."""

    success = serializers.BooleanField()
    duration_us = serializers.IntegerField(min_value=0, max_value=MAX_DURATION_US,
                                           help_text="Execution time in microseconds.")


class UsageRequestInput(UsageInput):
    version = serializers.CharField(required=False,
                                    help_text="Default: the newest approved version.")
