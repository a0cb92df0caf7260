"""DRF permissions: token scopes and moderators."""

from rest_framework import permissions

from registry_site.models import ApiToken, Scope
from registry_site.roles import is_moderator


def required_scope(view, request) -> str | None:
    """The scope a view needs: ``view.required_scopes`` maps action names (or "*") to scopes;
    safe methods default to ``read``."""
    mapping = getattr(view, "required_scopes", {}) or {}
    action = getattr(view, "action", None) or request.method.lower()
    if action in mapping:
        return mapping[action]
    if "*" in mapping:
        return mapping["*"]
    return "read" if request.method in permissions.SAFE_METHODS else None


def request_has_scope(request, scope: str) -> bool:
    """Whether the request may use ``scope``: sessions always, tokens only if they carry it."""
    token = request.auth
    return not isinstance(token, ApiToken) or scope in token.scopes


class TokenHasScope(permissions.BasePermission):
    """A request made with a token must carry the scope the view needs; sessions are unscoped."""

    message = "This token lacks the required scope."

    def has_permission(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        scope = required_scope(view, request)
        if scope is None or scope in token.scopes:
            return True
        self.message = f"This token lacks the '{scope}' scope."
        return False


class IsModerator(permissions.BasePermission):
    message = "Only moderators may do this."

    def has_permission(self, request, view):
        return is_moderator(request.user)


# Ids above this cannot be a BigAutoField primary key; int() of a long digit string is bounded.
MAX_ID_DIGITS = 18


def parse_id(text: str) -> int | None:
    """A URL's id as an integer ("01" is 1), or None when the text can name no row."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS:
        return int(text)
    return None


class CanRevokeTokens(permissions.BasePermission):
    """A token may always revoke itself (revocation is never blocked), but revoking other
    tokens needs the session or a token with more than ``read``: a leaked read-only token must
    not be able to sign its owner's other clients out."""

    message = "A read-only token may revoke only itself."

    def has_permission(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken) or set(token.scopes) - {Scope.READ}:
            return True
        if view.action != "destroy":
            return False
        # Compared as integers: /tokens/01/ names the same token as /tokens/1/. An id that
        # names no token is the view's 404, not a refusal.
        token_id = parse_id(view.kwargs.get("pk", ""))
        return token_id is None or token_id == token.pk
