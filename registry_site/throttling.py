"""Rate limits on the shared cache, so every worker and host counts against one limit.

DRF's stock throttles keep a list of timestamps and write it back with a plain get/set: two
workers that read the same list at once both let a request through, so under load more than
the limit passes. These throttles count with the cache's atomic ``add`` (creates the window)
and ``incr`` (Redis INCR), so the Nth request of a window is refused whichever worker gets it.
A window opens with a client's first request and lasts the rate's period.

Every API request is counted by ``RequestRateThrottle``: the caller's limit and, when the view
names one for the action, a scoped limit on top (``throttle_scope = "vote"`` for the whole
view, or ``throttle_scopes = {"create": "register"}`` per action or lower-case HTTP method),
both in one round trip to Redis. The scopes and their rates are in settings.THROTTLE_RATES.

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
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling

from registry_site.errors import CACHE_ERRORS, CacheUnavailable

logger = logging.getLogger(__name__)

# Counts kept in this process while Redis is unreachable (see fail_closed).
_fallback = LocMemCache("throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})


@dataclass(frozen=True)
class Limit:
    """One counter a request is counted in: its cache key and the rate it is held to."""

    key: str
    scope: str
    rate: str
    num_requests: int
    duration: int


class SharedCacheRateMixin:
    """Fixed-window counting with atomic cache operations; every limit of a request is counted
    in one round trip to Redis (``RedisCache.count_hits``)."""

    # True: refuse every request with 503 when the shared counters cannot be reached.
    fail_closed = False

    @property
    def cache(self):
        return caches["throttles"]

    def limit(self, scope: str, ident) -> Limit | None:
        """The limit of ``scope`` for ``ident``; None when its rate is None (unlimited)."""
        if scope not in self.THROTTLE_RATES:
            raise ImproperlyConfigured(f"No throttle rate for the scope {scope!r}.")
        rate = self.THROTTLE_RATES[scope]
        if rate is None:
            return None
        num_requests, duration = self.parse_rate(rate)
        return Limit(self.cache_format % {"scope": scope, "ident": ident}, scope, rate,
                     num_requests, duration)

    def limits(self, request, view) -> list[Limit]:
        key = self.get_cache_key(request, view)
        if key is None or self.rate is None:
            return []
        return [Limit(key, self.scope, self.rate, self.num_requests, self.duration)]

    def get_ident(self, request):
        # DRF's get_ident trusts X-Forwarded-For whenever NUM_PROXIES is unset, so a client
        # could pick a fresh identity per request; ClientIPMiddleware already applied
        # TRUSTED_PROXY_COUNT.
        return getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR") or "unknown"

    def allow_request(self, request, view):
        self.refused_wait = None
        counted = getattr(request, "throttle_counted", None)
        if counted is None:
            counted = request.throttle_counted = set()
        limits = [limit for limit in self.limits(request, view) if limit.key not in counted]
        if not limits:
            return True
        counted.update(limit.key for limit in limits)
        allowed = True
        now = time.time()
        for limit, (count, reset_at) in zip(limits, self._count(limits, now), strict=True):
            _note_state(request, limit, count, reset_at, now)
            if count <= limit.num_requests:
                continue
            allowed = False
            wait = max(1, math.ceil((reset_at or now + limit.duration) - now))
            self.refused_wait = max(self.refused_wait or 0, wait)
            # The first refusal of a window is audited; the ones after it would turn a
            # flood into a flood of audit writes.
            refusals = getattr(request, "throttle_refusals", None)
            if refusals is None:
                refusals = request.throttle_refusals = []
            refusals.append({"scope": limit.scope, "rate": limit.rate,
                             "audit": count == limit.num_requests + 1})
        return allowed

    def _count(self, limits: list[Limit], now: float) -> list[tuple[int, float | None]]:
        """Count one request in each limit's window: (count so far, when the window ends)."""
        windows = [(limit.key, limit.duration) for limit in limits]
        try:
            store = self.cache
            if hasattr(store, "count_hits"):
                return store.count_hits(windows, now)
            return [_hit(store, key, duration, now) for key, duration in windows]
        except CACHE_ERRORS as exc:
            if self.fail_closed:
                raise CacheUnavailable(
                    "Sign-in is unavailable while the rate-limit store is down. "
                    "Try again shortly."
                ) from exc
            logger.warning("throttle %s counted in this process only: %s",
                           ", ".join(limit.scope for limit in limits), exc)
            return [_hit(_fallback, key, duration, now) for key, duration in windows]

    def wait(self):
        return self.refused_wait


@dataclass(frozen=True)
class RateLimitState:
    """What the RateLimit-* headers of an answer say: the limit nearest to refusing."""

    limit: int
    remaining: int
    reset: int  # seconds until its window ends

    def headers(self) -> dict[str, str]:
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset)}


def _note_state(request, limit: Limit, count: int, reset_at: float | None, now: float) -> None:
    """Keep on the request (Django's, which the middleware sees) the tightest limit so far."""
    state = RateLimitState(
        limit=limit.num_requests, remaining=max(0, limit.num_requests - count),
        reset=max(0, math.ceil((reset_at or now + limit.duration) - now)))
    django_request = getattr(request, "_request", request)
    known = getattr(django_request, "rate_limit", None)
    if known is None or (state.remaining, -state.reset) < (known.remaining, -known.reset):
        django_request.rate_limit = state


def _hit(store, key: str, duration: int, now: float) -> tuple[int, float | None]:
    """``RedisCache.count_hits`` for one key on any Django cache: (count, window end).

    Every request pays one increment; only the first of a window also opens it. The window's
    end is kept beside the counter and read only to answer Retry-After.
    """
    reset_at = math.ceil(now + duration)
    try:
        count = store.incr(key)
    except ValueError:
        if store.add(key, 1, duration):
            store.set(f"{key}:reset", reset_at, duration)
            return 1, reset_at
        # Another worker opened the window a moment ago.
        count = store.incr(key)
    if count == 1:
        # An INCR on a key that expired a moment ago recreates it without a timeout; this
        # request opens the window instead, so the counter expires again.
        store.touch(key, duration)
        store.set(f"{key}:reset", reset_at, duration)
        return 1, reset_at
    stored = store.get(f"{key}:reset")
    return count, stored if isinstance(stored, int | float) else None


class RequestRateThrottle(SharedCacheRateMixin, throttling.SimpleRateThrottle):
    """Every API request: the caller's limit (``user`` per user, ``anon`` per address for
    anonymous requests) and the view's scoped limit for this action, if it names one.

    A view names its scope with ``throttle_scope = "vote"`` (the whole view) or
    ``throttle_scopes = {"create": "register"}`` (per action or lower-case HTTP method); the
    scoped limit counts per user, or per address for anonymous callers.
    """

    def __init__(self):
        pass  # the rates are looked up per request, by scope

    def limits(self, request, view):
        if request.user and request.user.is_authenticated:
            caller, ident = "user", request.user.pk
        else:
            caller, ident = "anon", self.get_ident(request)
        scopes = getattr(view, "throttle_scopes", None) or {}
        scope = scopes.get(getattr(view, "action", None)) or scopes.get(request.method.lower())
        scope = scope or getattr(view, "throttle_scope", None)
        limits = [self.limit(caller, ident), self.limit(scope, ident) if scope else None]
        return [limit for limit in limits if limit is not None]


class AddressRateThrottle(SharedCacheRateMixin, throttling.SimpleRateThrottle):
    """The anonymous budget of the client's address, whoever the request claims to be: failed
    authentication and refused permission checks are counted here (registry_site.errors).
    A request the anonymous limit already counted is not counted twice."""

    scope = "anon"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TokenCreateThrottle(SharedCacheRateMixin, throttling.SimpleRateThrottle):
    """Token creation checks a password: limited per client address and per username, so
    neither one address guessing many accounts nor many addresses guessing one account
    gets more than the rate."""

    scope = "token_create"
    fail_closed = True

    def limits(self, request, view):
        idents = [f"ip:{self.get_ident(request)}"]
        # A DRF request (token creation) or a Django one (the login forms).
        data = request.data if hasattr(request, "data") else request.POST
        username = data.get("username") if hasattr(data, "get") else None
        if isinstance(username, str) and username.strip():
            # Hashed: any text fits a cache key of bounded length.
            digest = hashlib.sha256(username_key(username).encode("utf-8", "surrogatepass"))
            idents.append(f"user:{digest.hexdigest()}")
        limits = [self.limit(self.scope, ident) for ident in idents]
        return [limit for limit in limits if limit is not None]


def username_key(username: str) -> str:
    """Every spelling that signs in as the same account maps to one key: Django's login form
    applies NFKC (``u９``, ``𝑢９`` and ``ⓤ9`` all sign in as ``u9``), and case is folded on
    top, so the per-username budget covers them all."""
    return unicodedata.normalize("NFKC", username.strip()).casefold()


class LoginThrottle(TokenCreateThrottle):
    """The browser and admin login forms check the same passwords: the same limit."""
