"""Bearer personal access tokens for the API."""

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from registry_site.compiled import MARKER_TEXT, Compiled
from registry_site.models import ApiToken
from registry_site.roles import MODERATORS_GROUP
from registry_site.services import token_digest

# last_used_at is written at most this often per token, so reads stay reads.
LAST_USED_RESOLUTION_SECONDS = 60


def _token_and_user(digest):
    memberships = get_user_model().groups.through.objects.filter(
        **{f"{get_user_model().groups.field.m2m_field_name()}_id": OuterRef("user_id")},
        group__name=MODERATORS_GROUP)
    return (ApiToken.objects.select_related("user").filter(digest=digest)
            .annotate(user_is_moderator=Exists(memberships)))


# Compiled once (registry_site.compiled): the ORM's build of this select_related and Exists
# cost more CPU than the query itself on every token request.
_TOKEN = Compiled(_token_and_user, digest=MARKER_TEXT)


def token_with_user(digest: str) -> ApiToken | None:
    """The token with this digest, its user loaded and the user's moderator check memoized
    (registry_site.roles), in one statement: a token request costs one query before the
    view's own."""
    rows = _TOKEN.rows(digest=digest)
    if not rows:
        return None
    token = rows[0]
    token.user._is_moderator = token.user.is_superuser or token.user_is_moderator
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
