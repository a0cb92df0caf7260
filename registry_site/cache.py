"""Redis as a cache of copies that fails open: while Redis is unreachable, reads miss and
writes are dropped, so callers read the database instead of answering 500.

Used for the ``default`` cache alias (statistics, metrics, parameter reads). Counters that must
hold across workers (rate limits) use the ``throttles`` alias, which raises. ``cache.strict`` is
the same cache without the fallback, for the writes that must not be lost silently (a changed
parameter must not leave its old value cached).
"""

import logging
import math
import time

from django.core.cache.backends import redis as django_redis

from registry_site.errors import CACHE_ERRORS

logger = logging.getLogger(__name__)

# One warning per process per this many seconds, not one per request of an outage.
WARN_EVERY_SECONDS = 10
# After a failed call, this process serves without Redis for this long before trying it again.
SKIP_AFTER_FAILURE_SECONDS = 5


def _fail_open(name: str, fallback):
    method = getattr(RedisCache, name)

    def call(self, *args, **kwargs):
        if time.monotonic() < self.down_until:
            return fallback(*args, **kwargs) if callable(fallback) else fallback
        try:
            return method(self, *args, **kwargs)
        except CACHE_ERRORS as exc:
            self.failed(name, exc)
            return fallback(*args, **kwargs) if callable(fallback) else fallback

    call.__name__ = name
    return call


# INCRBY only if the key exists, in one round trip: Django's incr asks EXISTS first and
# then INCRBY, two round trips for every rate-limit count and every cache generation bump.
INCR_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"""

# Move several generation counters on in one round trip: each key is incremented, or started
# at ARGV[1] when it is missing (evicted or new), never from 0.
BUMP_MANY = """
for _, key in ipairs(KEYS) do
    if redis.call('EXISTS', key) == 1 then
        redis.call('INCR', key)
    else
        redis.call('SET', key, ARGV[1])
    end
end
return #KEYS
"""


# Count one request in each of several rate-limit windows (registry_site.throttling), in one
# round trip. KEYS[i] is a counter, ARGV[2i-1] its window in milliseconds and ARGV[2i] when
# that window ends if this request opens it (the app's clock, in whole seconds, rounded up).
# The window's end is kept beside the counter, for Retry-After. Answers each counter's count
# and window end.
COUNT_HITS = """
local answers = {}
for i, key in ipairs(KEYS) do
    local window = ARGV[2 * i - 1]
    local count = redis.call('INCR', key)
    -- A new window, or a counter left without a timeout: (re)open the window.
    if count == 1 or redis.call('PTTL', key) == -1 then
        redis.call('PEXPIRE', key, window)
        redis.call('SET', key .. ':reset', ARGV[2 * i], 'PX', window)
    end
    answers[2 * i - 1] = count
    answers[2 * i] = redis.call('GET', key .. ':reset') or false
end
return answers
"""


class _ReusedClient(django_redis.RedisCacheClient):
    """Django builds a new redis.Redis for every cache call, and redis-py fills a table of
    some 200 response callbacks in each: a third of a cached answer's time. One client per
    connection pool is enough (a client is as thread-safe as its pool)."""

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        clients = self.__dict__.setdefault("_clients", {})
        client = clients.get(index)
        if client is None:
            client = clients[index] = super().get_client(key, write=write)
        return client

    def _script(self, client, source: str):
        """``source`` registered on ``client``: EVALSHA, falling back to EVAL once when the
        server does not know the script."""
        scripts = self.__dict__.setdefault("_scripts", {})
        script = scripts.get((id(client), source))
        if script is None:
            script = scripts[id(client), source] = client.register_script(source)
        return script

    def incr(self, key, delta=1):
        """Django's contract (ValueError for a missing key), in one round trip."""
        client = self.get_client(key, write=True)
        value = self._script(client, INCR_EXISTING)(keys=[key], args=[delta])
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    def bump_many(self, keys, start: int) -> None:
        client = self.get_client(keys[0], write=True)
        # An int is stored as its digits by Django's serializer, so get() reads it back.
        self._script(client, BUMP_MANY)(keys=list(keys), args=[start])

    def count_hits(self, windows, now: float) -> list[tuple[int, float | None]]:
        client = self.get_client(windows[0][0], write=True)
        args = []
        for _, seconds in windows:
            args += [int(seconds * 1000), math.ceil(now + seconds)]
        answers = self._script(client, COUNT_HITS)(keys=[key for key, _ in windows], args=args)
        return [(int(count), _window_end(reset))
                for count, reset in zip(answers[::2], answers[1::2], strict=True)]


def _window_end(stored: bytes | None) -> int | None:
    """A window end as COUNT_HITS stores it (the digits Django's serializer also writes for an
    int); None for anything else, such as the pickled float an earlier release wrote, and
    Retry-After then names the whole window."""
    try:
        return int(stored) if stored is not None else None
    except ValueError:
        return None


class RedisCache(django_redis.RedisCache):
    """Django's Redis cache, reusing its client (see _ReusedClient)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClient

    def bump_many(self, keys, start: int, version=None) -> None:
        """Increment each of ``keys``, or set it to ``start`` when it is missing: generation
        counters (models_app.read_cache), in one round trip."""
        self._cache.bump_many([self.make_and_validate_key(k, version=version) for k in keys],
                              start)

    def count_hits(self, windows, now: float, version=None) -> list[tuple[int, float | None]]:
        """Count one hit in each ``(key, seconds)`` window, opening the windows that are not
        open (they end ``seconds`` after ``now``): each one's count and window end, in one
        round trip. Rate limits (registry_site.throttling)."""
        return self._cache.count_hits(
            [(self.make_and_validate_key(key, version=version), seconds)
             for key, seconds in windows], now)


def _default(key, default=None, version=None):
    return default


class FailOpenRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self.strict = RedisCache(server, params)
        self._warned_at = 0.0
        self.down_until = 0.0

    def failed(self, operation: str, exc: Exception) -> None:
        now = time.monotonic()
        # A Redis that hangs costs the whole timeout per call; a page makes several. After a
        # failure this process skips Redis for a moment instead of waiting on it again.
        self.down_until = now + SKIP_AFTER_FAILURE_SECONDS
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning("cache %s failed, serving without the cache: %s", operation, exc)

    get = _fail_open("get", _default)
    get_many = _fail_open("get_many", lambda keys, version=None: {})
    has_key = _fail_open("has_key", False)
    add = _fail_open("add", False)
    set = _fail_open("set", None)
    touch = _fail_open("touch", False)
    delete = _fail_open("delete", False)
    delete_many = _fail_open("delete_many", None)
    set_many = _fail_open("set_many", lambda data, *args, **kwargs: list(data))
