"""Who may do what: moderators and the token scopes a user may hold."""

from registry_site.models import Scope

MODERATORS_GROUP = "moderators"


def is_moderator(user) -> bool:
    """Superusers and members of the moderators group; memoized on the user object."""
    if not user or not user.is_authenticated:
        return False
    cached = getattr(user, "_is_moderator", None)
    if cached is None:
        cached = user.is_superuser or user.groups.filter(name=MODERATORS_GROUP).exists()
        user._is_moderator = cached
    return cached


def allowed_scopes(user) -> list[str]:
    """Scopes a user may put on a token: everything, and ``moderate`` only for moderators."""
    return [s.value for s in Scope if s != Scope.MODERATE or is_moderator(user)]
