"""Rate limits on the shared cache, so every worker and host counts against one limit.

DRF's stock throttles keep a list of timestamps and write it back with a plain get/set: two
workers that read the same list at once both let a request through, so under load more than
the limit passes. These throttles count with the cache's atomic ``add`` (creates the window)
and ``incr`` (Redis INCR), so the Nth request of a window is refused whichever worker gets it.
A window opens with a client's first request and lasts the rate's period.

A view adds a scoped limit on top of the default two by adding ``ScopedRateThrottle`` to its
throttles and naming the scope: ``throttle_scope = "vote"`` (the whole view, or set for one
action) or ``throttle_scopes = {"create": "register"}`` (per action or lower-case HTTP method).
The scopes and their rates are in settings.THROTTLE_RATES.

When Redis is unreachable the limits fail open to a per-process count (each worker then
allows the limit on its own), except the password limits (token creation and the login
forms), which fail closed with 503 ``cache_unavailable``: a password check without its limit
is what an attacker would wait for.
"""

import hashlib
import logging
import math
import time
import unicodedata

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework import throttling

from registry_site.errors import CACHE_ERRORS, CacheUnavailable

logger = logging.getLogger(__name__)

# Counts kept in this process while Redis is unreachable (see fail_closed).
_fallback = LocMemCache("throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})


class SharedCacheRateMixin:
    """Fixed-window counting with atomic cache operations; one or more buckets per request."""

    # True: refuse every request with 503 when the shared counters cannot be reached.
    fail_closed = False

    @property
    def cache(self):
        return caches["throttles"]

    def buckets(self, request, view) -> list[str]:
        key = self.get_cache_key(request, view)
        return [key] if key else []

    def get_ident(self, request):
        # DRF's get_ident trusts X-Forwarded-For whenever NUM_PROXIES is unset, so a client
        # could pick a fresh identity per request; ClientIPMiddleware already applied
        # TRUSTED_PROXY_COUNT.
        return getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR") or "unknown"

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        keys = self.buckets(request, view)
        if not keys:
            return True
        allowed = True
        self.refused_wait = None
        counted = getattr(request, "throttle_counted", None)
        if counted is None:
            counted = request.throttle_counted = set()
        for key in keys:
            counted.add(key)
            try:
                store = self.cache
                count = self._hit(key, store)
            except CACHE_ERRORS as exc:
                if self.fail_closed:
                    raise CacheUnavailable(
                        "Sign-in is unavailable while the rate-limit store is down. "
                        "Try again shortly."
                    ) from exc
                logger.warning("throttle %s counted in this process only: %s", self.scope, exc)
                store = _fallback
                count = self._hit(key, store)
            if count > self.num_requests:
                allowed = False
                reset_at = store.get(f"{key}:reset") or time.time() + self.duration
                wait = max(1, math.ceil(reset_at - time.time()))
                self.refused_wait = max(self.refused_wait or 0, wait)
                # The first refusal of a window is audited; the ones after it would turn a
                # flood into a flood of audit writes, all serialized on the chain head.
                first_refusal = count == self.num_requests + 1
                refusals = getattr(request, "throttle_refusals", None)
                if refusals is None:
                    refusals = []
                    request.throttle_refusals = refusals
                refusals.append({"scope": self.scope, "rate": self.rate,
                                 "audit": first_refusal})
        return allowed

    def _hit(self, key: str, store) -> int:
        """Count one request in ``key``'s window in ``store`` and return the count so far.

        Every request pays one increment; only the first of a window also opens it. The
        window's end is kept beside the counter and read only to answer Retry-After.
        """
        try:
            count = store.incr(key)
        except ValueError:
            if store.add(key, 1, self.duration):
                self._open_window(store, key)
                return 1
            # Another worker opened the window a moment ago.
            count = store.incr(key)
        if count == 1:
            # A Redis INCR on a key that expired a moment ago recreates it without a TTL;
            # this request opens the window instead, so the counter expires again.
            store.touch(key, self.duration)
            self._open_window(store, key)
        return count

    def _open_window(self, store, key: str) -> None:
        store.set(f"{key}:reset", time.time() + self.duration, self.duration)

    def wait(self):
        return self.refused_wait


class AnonRateThrottle(SharedCacheRateMixin, throttling.AnonRateThrottle):
    """Anonymous requests, per client address."""


class AddressRateThrottle(AnonRateThrottle):
    """The anonymous budget of the client's address, whoever the request claims to be: failed
    authentication and refused permission checks are counted here (registry_site.errors).
    A request the anonymous limit already counted is not counted twice."""

    def get_cache_key(self, request, view):
        key = self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        return None if key in getattr(request, "throttle_counted", ()) else key


class UserRateThrottle(SharedCacheRateMixin, throttling.UserRateThrottle):
    """Authenticated requests, per user; anonymous ones are AnonRateThrottle's alone, so each
    request costs one counter, not two."""

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)


class ScopedRateThrottle(SharedCacheRateMixin, throttling.ScopedRateThrottle):
    """Per-user (or per-address) limits for one kind of write, named by the view's scope."""

    def allow_request(self, request, view):
        scopes = getattr(view, "throttle_scopes", None) or {}
        action = getattr(view, "action", None)
        scope = scopes.get(action) or scopes.get(request.method.lower())
        scope = scope or getattr(view, self.scope_attr, None)
        if not scope:
            return True
        self.scope = scope
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return SharedCacheRateMixin.allow_request(self, request, view)


class TokenCreateThrottle(SharedCacheRateMixin, throttling.SimpleRateThrottle):
    """Token creation checks a password: limited per client address and per username, so
    neither one address guessing many accounts nor many addresses guessing one account
    gets more than the rate."""

    scope = "token_create"
    fail_closed = True

    def buckets(self, request, view):
        keys = [self.cache_format % {"scope": self.scope, "ident": f"ip:{self.get_ident(request)}"}]
        # A DRF request (token creation) or a Django one (the login forms).
        data = request.data if hasattr(request, "data") else request.POST
        username = data.get("username") if hasattr(data, "get") else None
        if isinstance(username, str) and username.strip():
            # Hashed: any text fits a cache key of bounded length.
            digest = hashlib.sha256(username_key(username).encode("utf-8", "surrogatepass"))
            ident = f"user:{digest.hexdigest()}"
            keys.append(self.cache_format % {"scope": self.scope, "ident": ident})
        return keys

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def username_key(username: str) -> str:
    """Every spelling that signs in as the same account maps to one key: Django's login form
    applies NFKC (``u９``, ``𝑢９`` and ``ⓤ9`` all sign in as ``u9``), and case is folded on
    top, so the per-username budget covers them all."""
    return unicodedata.normalize("NFKC", username.strip()).casefold()


class LoginThrottle(TokenCreateThrottle):
    """The browser and admin login forms check the same passwords: the same limit."""
