"""Bearer personal access tokens for the API."""

import functools

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from registry_site.models import ApiToken
from registry_site.roles import MODERATORS_GROUP
from registry_site.services import token_digest

# last_used_at is written at most this often per token, so reads stay reads.
LAST_USED_RESOLUTION_SECONDS = 60


def _columns(model, alias: str) -> str:
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def _instance(model, values, connection):
    """A model instance from its concrete columns' raw values, converted as the ORM would."""
    fields = model._meta.concrete_fields
    converted = []
    for field, value in zip(fields, values, strict=True):
        expression = field.get_col(model._meta.db_table)
        for convert in (connection.ops.get_db_converters(expression)
                        + expression.get_db_converters(connection)):
            value = convert(value, expression, connection)
        converted.append(value)
    return model.from_db(connection.alias, [field.attname for field in fields], converted)


@functools.cache
def _token_sql() -> str:
    # Quoted identifiers and EXISTS: the same text on PostgreSQL and SQLite.
    user = get_user_model()
    groups = user._meta.get_field("groups")
    memberships = groups.remote_field.through._meta
    member = memberships.get_field(groups.m2m_field_name()).column
    group_fk = memberships.get_field(groups.m2m_reverse_field_name())
    group = group_fk.related_model._meta
    token_user = ApiToken._meta.get_field("user").column
    return (
        f"SELECT {_columns(ApiToken, 't')}, {_columns(user, 'u')}, EXISTS("
        f'SELECT 1 FROM "{memberships.db_table}" m JOIN "{group.db_table}" g '
        f'ON g."{group.pk.column}" = m."{group_fk.column}" '
        f'WHERE m."{member}" = u."{user._meta.pk.column}" AND g."name" = %s) '
        f'FROM "{ApiToken._meta.db_table}" t JOIN "{user._meta.db_table}" u '
        f'ON u."{user._meta.pk.column}" = t."{token_user}" WHERE t."digest" = %s'
    )


def token_with_user(digest: str) -> ApiToken | None:
    """The token with this digest, its user loaded and the user's moderator check memoized
    (registry_site.roles), in one statement: a token request costs one query before the
    view's own. Written out rather than built by the ORM (select_related, an Exists
    annotation), whose build of it cost more CPU than the query itself on every request."""
    user_model = get_user_model()
    with connection.cursor() as cursor:
        cursor.execute(_token_sql(), [MODERATORS_GROUP, digest])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(ApiToken._meta.concrete_fields)
    ends = split + len(user_model._meta.concrete_fields)
    token = _instance(ApiToken, row[:split], connection)
    token.user = _instance(user_model, row[split:ends], connection)
    token.user._is_moderator = token.user.is_superuser or bool(row[ends])
    return token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>``; sets ``request.auth`` to the ApiToken."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            secret = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Malformed token.") from None
        token = token_with_user(token_digest(secret))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token has been revoked.")
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed("Token has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User is inactive.")
        if (
            token.last_used_at is None
            or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        ):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "registry_site.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Personal access token"}
