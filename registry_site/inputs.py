"""One input definition per service: a DRF serializer that the API, the pages and the admin share.

A service validates its input through its serializer with ``validated()``; an HTML form or an
admin form only turns text into values and hands them over with ``InputForm``, so every field
rule lives in one place and every broken field is reported in one round.
"""

import functools
from collections.abc import Mapping

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers
from rest_framework.fields import SkipField

from registry_site.errors import DomainError, InvalidInput, field_messages
from registry_site.reuse import reused


def refusal_message(exc: DomainError) -> str:
    """A service's refusal as one line (admin messages, commands), naming each refused field."""
    fields = exc.extra.get("fields", {})
    return " ".join([exc.detail, *(f"{field}: {' '.join(errors)}"
                                   for field, errors in fields.items())])


def choices_message(values) -> str:
    """The error of a choice: the allowed values, never what was sent (it may be anything)."""
    return f"Must be one of {', '.join(str(value) for value in values)}."


class Choice(serializers.ChoiceField):
    """A choice whose error names the allowed values and never echoes the input back."""

    def __init__(self, choices, **kwargs):
        super().__init__(choices, **kwargs)
        if "invalid_choice" not in kwargs.get("error_messages", {}):
            self.error_messages["invalid_choice"] = choices_message(self.choice_strings_to_values)


class ChoiceFilter(django_filters.ChoiceFilter):
    """A FilterSet's choice, with the same error as Choice (Django's repeats the input)."""

    def __init__(self, *args, choices, **kwargs):
        kwargs.setdefault("error_messages", {
            "invalid_choice": choices_message(value for value, _ in choices)})
        super().__init__(*args, choices=choices, **kwargs)


class ModelInput(serializers.ModelSerializer):
    """An input whose field rules come from a model's fields (lengths, patterns, bounds)."""

    serializer_choice_field = Choice

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        # Same bounds (the model field's range validators), plainer messages.
        models.BigIntegerField: serializers.IntegerField,
    }


class CheckedTogether:
    """A serializer mixin whose cross-field rules run even when some fields are broken.

    DRF runs ``validate()`` only once every field has parsed, so a form would learn of
    ``min_fee > max_fee`` only after fixing ``unit_fee``. Here ``cross_field_errors`` gets the
    fields that did parse, and one answer names every error; a field's own error wins over a
    cross-field one on the same field.
    """

    def cross_field_errors(self, attrs: dict) -> dict[str, str]:
        """Errors of the rules between fields, looking only at the fields present in attrs."""
        return {}

    def _parsed_fields(self, data: Mapping, broken) -> dict:
        attrs = {}
        for field in self._writable_fields:
            if field.field_name in broken:
                continue
            try:
                attrs[field.source] = field.run_validation(field.get_value(data))
            except (serializers.ValidationError, DjangoValidationError, SkipField):
                continue
        return attrs

    def to_internal_value(self, data):
        try:
            attrs, errors = super().to_internal_value(data), {}
        except serializers.ValidationError as exc:
            if not isinstance(data, Mapping) or not isinstance(exc.detail, Mapping):
                raise
            errors = dict(exc.detail)
            attrs = self._parsed_fields(data, errors)
        for field, message in self.cross_field_errors(attrs).items():
            errors.setdefault(field, [message])
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


@functools.cache
def _field_names(input_class: type[serializers.Serializer]) -> tuple[str, ...]:
    return tuple(input_class().fields)


def request_fields(input_class: type[serializers.Serializer], data) -> dict:
    """The fields ``input_class`` defines, taken from a request body as sent, for a service
    that validates them with ``input_class`` itself (so the request is checked once)."""
    if not isinstance(data, Mapping):
        raise InvalidInput({"non_field_errors": "Expected a JSON object."})
    return {name: data[name] for name in _field_names(input_class) if name in data}


def validated(input_class: type[serializers.Serializer], data, **context) -> dict:
    """``data`` checked by ``input_class``; InvalidInput naming every broken field otherwise."""
    with reused(input_class, **context) as serializer:
        serializer.initial_data = data
        if not serializer.is_valid():
            raise InvalidInput(field_messages(serializer.errors))
        return dict(serializer.validated_data)


class InputForm(forms.Form):
    """A form whose rules are its service's input serializer: fields only render and parse.

    ``to_input`` turns the submitted text into the values the serializer takes; its errors are
    shown on the fields they name (or on the form), all at once.
    """

    input_class: type[serializers.Serializer]

    def to_input(self, text: dict) -> dict:
        # Empty text means "not given": the serializer's defaults and "required" apply.
        return {field: value for field, value in text.items() if value not in ("", None)}

    def clean(self):
        text = super().clean()
        try:
            return validated(self.input_class, self.to_input(text))
        except InvalidInput as exc:
            for field, messages in exc.extra["fields"].items():
                if field in self.errors:
                    # The text itself was refused (a NUL, say), so the input lacks the field:
                    # "required" on top of that error would be wrong.
                    continue
                self.add_error(field if field in self.fields else None, messages)
        return {}
