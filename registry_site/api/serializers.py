from rest_framework import serializers

from registry_site.inputs import Choice
from registry_site.models import ApiToken, AuditEvent, Scope


class BlankAsNull:
    """An optional text column stores "" for "none"; the API answers null, as its schema
    says (a URL or an enum value cannot be "")."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value):
        return None if value == "" else super().to_representation(value)


class NullableURLField(BlankAsNull, serializers.URLField):
    pass


class NullableChoiceField(BlankAsNull, serializers.ChoiceField):
    pass


class TokenCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, style={"input_type": "password"})
    # Omitted means every scope the user may hold; an explicit empty list is a mistake, not
    # a request for everything.
    scopes = serializers.ListField(
        child=Choice(choices=Scope.choices), required=False, min_length=1, max_length=10,
        allow_empty=False,
    )
    expires_in = serializers.IntegerField(min_value=1, required=False)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class TokenCreatedSerializer(serializers.ModelSerializer):
    token = serializers.CharField(help_text="The secret; shown only in this response.")

    class Meta:
        model = ApiToken
        fields = ["id", "token", "name", "scopes", "expires_at"]
        read_only_fields = fields


class TokenSerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scopes", "created_at", "expires_at", "revoked_at",
                  "last_used_at", "is_active"]
        read_only_fields = fields


class RevokedCountSerializer(serializers.Serializer):
    revoked = serializers.IntegerField()


class ParameterSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.IntegerField()
    default = serializers.IntegerField()
    minimum = serializers.IntegerField()
    maximum = serializers.IntegerField()
    description = serializers.CharField()
    updated_at = serializers.DateTimeField(allow_null=True)


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, allow_null=True,
                                  help_text="Null for the registry's own and anonymous events.")

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "action", "target_type", "target_id", "ip",
                  "details", "seq", "prev_hash", "hash"]
        read_only_fields = fields
