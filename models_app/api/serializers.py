"""Output shapes of the registry API; the inputs and their rules are in models_app.inputs."""

import datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from models_app.models import MetadataChange, Registration, StatusChange
from registry_site.api.serializers import NullableURLField


class RegistrationSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    source_url = NullableURLField(help_text="Null when none was given.")
    total_executions = serializers.IntegerField(source="executions", read_only=True)

    class Meta:
        model = Registration
        fields = ["name", "version", "owner", "status", "category", "hash", "description",
                  "license", "source_url", "tags", "architecture", "input_shape",
                  "output_shape", "size_bytes", "parameter_count", "registration_fee",
                  "total_executions", "registered_at", "updated_at"]
        read_only_fields = fields


class VersionSerializer(RegistrationSerializer):
    """One version as a resource (its ETag covers every field shown): the registration's
    fields without the usage counters, which move on every execution (they are at
    ``stats/?version=``)."""

    total_executions = None

    class Meta(RegistrationSerializer.Meta):
        fields = [name for name in RegistrationSerializer.Meta.fields
                  if name != "total_executions"]
        read_only_fields = fields


@extend_schema_field({
    "type": "object",
    "description": "Each changed field with its value before and after.",
    "additionalProperties": {"type": "object", "properties": {"from": {}, "to": {}},
                             "required": ["from", "to"]},
})
class ChangesField(serializers.JSONField):
    pass


class MetadataChangeSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", read_only=True)
    changes = ChangesField(read_only=True)

    class Meta:
        model = MetadataChange
        fields = ["changes", "actor", "source", "reason", "created_at"]
        read_only_fields = fields


class VersionSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Registration
        fields = ["version", "status", "size_bytes", "registration_fee", "registered_at"]
        read_only_fields = fields


def _iso(value: datetime.datetime | None) -> str | None:
    """A time as DRF's DateTimeField writes it: ISO 8601 in UTC, 'Z' for +00:00."""
    if value is None:
        return None
    text = value.astimezone(datetime.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# The columns registration_data reads: a values() row, not three model instances per row
# (registration, owner and usage counters), whose construction was most of a page's time.
REGISTRATION_COLUMNS = (
    "name", "version", "owner__username", "status", "category", "hash", "description",
    "license", "source_url", "tags", "architecture", "input_shape", "output_shape",
    "size_bytes", "parameter_count", "registration_fee", "usage__total_executions",
    "pending_executions", "registered_at", "updated_at",
)
VERSION_COLUMNS = ("version", "status", "size_bytes", "registration_fee", "registered_at")


def registration_data(row: dict) -> dict:
    """RegistrationSerializer's output for a ``values(*REGISTRATION_COLUMNS)`` row, written
    out: the serializer walks a field object per value. The serializer stays the schema and
    the shape of the write answers; a test holds both to the same output."""
    return {
        "name": row["name"], "version": row["version"], "owner": row["owner__username"],
        "status": row["status"], "category": row["category"], "hash": row["hash"],
        "description": row["description"], "license": row["license"],
        "source_url": row["source_url"] or None, "tags": row["tags"],
        "architecture": row["architecture"], "input_shape": row["input_shape"],
        "output_shape": row["output_shape"], "size_bytes": row["size_bytes"],
        "parameter_count": row["parameter_count"], "registration_fee": row["registration_fee"],
        # Every registration has its usage row; without one the serializer writes null too.
        # Executions not yet folded into it (UsageDelta) count, as ``executions`` does.
        "total_executions": None if row["usage__total_executions"] is None else (
            row["usage__total_executions"] + (row["pending_executions"] or 0)),
        "registered_at": _iso(row["registered_at"]), "updated_at": _iso(row["updated_at"]),
    }


def version_summary_data(row: dict) -> dict:
    """VersionSummarySerializer's output for a ``values(*VERSION_COLUMNS)`` row."""
    return {"version": row["version"], "status": row["status"],
            "size_bytes": row["size_bytes"], "registration_fee": row["registration_fee"],
            "registered_at": _iso(row["registered_at"])}


class ModelDetailSerializer(RegistrationSerializer):
    """One version's fields plus the newest visible versions of the name, newest first."""

    versions = VersionSummarySerializer(many=True, read_only=True, source="newest_versions")
    versions_next = serializers.URLField(
        read_only=True, allow_null=True,
        help_text="The next page of versions/ when more versions than these exist; null "
                  "when these are all.")

    class Meta(RegistrationSerializer.Meta):
        fields = [*RegistrationSerializer.Meta.fields, "versions", "versions_next"]
        read_only_fields = fields


class StatusChangeSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="registration.name", read_only=True)
    version = serializers.CharField(source="registration.version", read_only=True)
    actor = serializers.CharField(source="actor.username", read_only=True, default=None,
                                  allow_null=True,
                                  help_text="Null when the registry acted (governance).")
    # Plain strings: one enum per status field would name the same choice set three times.
    from_status = serializers.CharField(read_only=True,
                                        help_text="Empty for the registration itself.")
    to_status = serializers.CharField(read_only=True)

    class Meta:
        model = StatusChange
        fields = ["name", "version", "from_status", "to_status", "actor", "source", "reason",
                  "proposal_id", "created_at"]
        read_only_fields = fields


class UsageRecordSerializer(serializers.Serializer):
    name = serializers.CharField(source="registration.name")
    version = serializers.CharField(source="registration.version")
    success = serializers.BooleanField()
    duration_us = serializers.IntegerField()
    fee = serializers.IntegerField()
    balance = serializers.IntegerField(help_text="The caller's balance after the fee.")
    recorded_at = serializers.DateTimeField()


class UsageStatsSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField(allow_null=True,
                                    help_text="Null: totals over every visible version.")
    total_executions = serializers.IntegerField()
    successful_executions = serializers.IntegerField()
    failed_executions = serializers.IntegerField()
    total_fees_collected = serializers.IntegerField()
    last_execution = serializers.DateTimeField(allow_null=True)
    avg_execution_time_us = serializers.IntegerField()
    unique_users = serializers.IntegerField()
    downloads = serializers.IntegerField(help_text="Whole downloads of the artifacts.")


class ApprovedVersionSerializer(serializers.Serializer):
    version = serializers.CharField()
    approved_since = serializers.DateTimeField()


class ApprovedAtSerializer(serializers.Serializer):
    name = serializers.CharField()
    approved_at = serializers.DateTimeField()
    versions = ApprovedVersionSerializer(many=True)


class RegistryStatsSerializer(serializers.Serializer):
    total_models = serializers.IntegerField(help_text="Registrations (versions).")
    active_models = serializers.IntegerField(help_text="Approved registrations.")
    pending_models = serializers.IntegerField()
    total_executions = serializers.IntegerField()
    total_downloads = serializers.IntegerField(help_text="Whole artifact downloads.")
    total_fees_collected = serializers.IntegerField(help_text="Every fee ever charged.")
    total_registrants = serializers.IntegerField()
    avg_model_size = serializers.IntegerField(help_text="Bytes.")
    most_popular_category = serializers.CharField(allow_null=True)
    by_status = serializers.DictField(child=serializers.IntegerField())
    by_category = serializers.DictField(child=serializers.IntegerField())
