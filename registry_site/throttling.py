"""Rate limits on the shared cache, so every worker and host counts against one limit."""

from rest_framework import throttling


class AnonRateThrottle(throttling.AnonRateThrottle):
    pass


class UserRateThrottle(throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    """Per-user (or per-IP) limits for one kind of write, named by ``throttle_scope``."""


class TokenCreateThrottle(throttling.SimpleRateThrottle):
    """Token creation checks a password, so it is limited per client address."""

    scope = "token_create"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
