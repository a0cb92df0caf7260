"""Redis as a cache of copies that fails open: while Redis is unreachable, reads miss and
writes are dropped, so callers read the database instead of answering 500.

Used for the ``default`` cache alias (statistics, metrics, parameter reads). Counters that must
hold across workers (rate limits) use the ``throttles`` alias, which raises. ``cache.strict`` is
the same cache without the fallback, for the writes that must not be lost silently (a changed
parameter must not leave its old value cached).
"""

import logging
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

    def incr(self, key, delta=1):
        """Django's contract (ValueError for a missing key), in one round trip."""
        client = self.get_client(key, write=True)
        scripts = self.__dict__.setdefault("_incr_scripts", {})
        script = scripts.get(id(client))
        if script is None:
            # EVALSHA, falling back to EVAL once when the server does not know the script.
            script = scripts[id(client)] = client.register_script(INCR_EXISTING)
        value = script(keys=[key], args=[delta])
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    def bump_many(self, keys, start: int) -> None:
        client = self.get_client(keys[0], write=True)
        scripts = self.__dict__.setdefault("_bump_scripts", {})
        script = scripts.get(id(client))
        if script is None:
            script = scripts[id(client)] = client.register_script(BUMP_MANY)
        # An int is stored as its digits by Django's serializer, so get() reads it back.
        script(keys=list(keys), args=[start])


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
