"""Generation counters in the shared cache, moved on when the writes that change them commit.

A cached copy (a rendered answer, registry statistics) is stored under the generation its
reader read before it read the database; a commit moves the generation on, so a copy computed
before the commit is never served after it (models_app.read_cache, registry_site.stats_cache).

A write names the counters it changes with ``changed(key, ...)``. However many writes and
counters a transaction has, all of them move on after it commits in one round trip to Redis
(one script), and none before: a transaction that rolls back moves nothing.

Inside the transaction that changed a counter, ``pending(key)`` is True. Its own reads must
neither be served a copy (made before its change) nor store one (made from data no other
connection sees yet, and which may still roll back).

If the cache is unreachable at commit, the keys are kept in this process and moved on at the
next read that reaches the cache (``retry_lost``); copies live a bounded time, which bounds what
an outage that also ends the process can leave behind.
"""

import logging
import threading
import time

from django.core.cache import cache
from django.db import transaction

from registry_site.errors import CACHE_ERRORS

logger = logging.getLogger(__name__)

# Keys whose move failed with the cache down, moved on at the next read that reaches it.
_lost: set[str] = set()
_lost_lock = threading.Lock()


class _AtCommit:
    """The counters one transaction moves on after it commits; registered once with it."""

    def __init__(self, keys):
        self.keys = set(keys)
        self.done = False

    def __call__(self):
        self.done = True
        bump(self.keys)


def _registered(connection) -> _AtCommit | None:
    """This transaction's _AtCommit, if a write in it (or in a savepoint still open or
    released) named a counter. A savepoint that rolls back takes its callbacks with it."""
    for _, callback, _ in connection.run_on_commit:
        if isinstance(callback, _AtCommit) and not callback.done:
            return callback
    return None


def changed(*keys: str) -> None:
    """Call inside a write: ``keys`` move on when it commits (at once outside a
    transaction)."""
    connection = transaction.get_connection()
    at_commit = _registered(connection) if connection.in_atomic_block else None
    if at_commit is None:
        transaction.on_commit(_AtCommit(keys))
    else:
        at_commit.keys.update(keys)


def pending(key: str) -> bool:
    """True inside a transaction that changed ``key`` and has not committed yet."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return False
    at_commit = _registered(connection)
    return at_commit is not None and key in at_commit.keys


def bump(keys) -> bool:
    """Move ``keys`` on now, in one round trip on Redis (a missing key starts from the clock,
    never from 0, so an evicted counter never repeats a number copies were stored under);
    False, with the keys kept for later, when the cache is down."""
    keys = sorted(keys)
    if not keys:
        return True
    # The strict cache raises rather than dropping the write after a recent failure; a
    # development cache has no fail-open wrapper and is strict already.
    store = getattr(cache, "strict", cache)
    try:
        if hasattr(store, "bump_many"):
            store.bump_many(keys, time.time_ns())
        else:
            for key in keys:
                try:
                    store.incr(key)
                except ValueError:
                    if not store.add(key, time.time_ns(), None):
                        store.incr(key)  # a reader started the count a moment ago
    except CACHE_ERRORS as exc:
        # The write has committed: it must not answer an error because Redis is down.
        logger.warning("%s: cached copies not moved on yet, the cache is down: %s",
                       ", ".join(keys), exc)
        with _lost_lock:
            _lost.update(keys)
        return False
    return True


def lost_any() -> bool:
    """Whether a move failed while the cache was down (one set lookup, for every read)."""
    return bool(_lost)


def retry_lost() -> set[str]:
    """Move on the keys whose move failed while the cache was down; the keys moved on."""
    if not _lost:
        return set()
    with _lost_lock:
        keys = set(_lost)
        _lost.clear()
    return keys if bump(keys) else set()
