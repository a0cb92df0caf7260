"""Registry-wide statistics in the shared cache, never stale after a write.

Figures are cached under a generation number, and every write that changes them moves the
generation on when it commits. A reader reads the generation before it computes, so figures
computed before a write can only ever be cached under the old generation, which no reader
looks at again: unlike deleting a key, which a slow reader could fill back with stale
figures right after. Within one generation readers ``add``, never ``set``, as parameters do.
"""

import logging
import time

from django.core.cache import cache
from django.db import transaction

from registry_site.errors import CACHE_ERRORS

logger = logging.getLogger(__name__)

GENERATION_KEY = "stats:generation"


def _new_generation() -> int:
    # Starts from the clock, never from 0: if the key is evicted, the new numbers are never
    # ones that figures are still cached under.
    return time.time_ns()


def _next_generation() -> None:
    try:
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:
            if not cache.add(GENERATION_KEY, _new_generation(), None):
                cache.incr(GENERATION_KEY)  # a reader started the count a moment ago
    except CACHE_ERRORS as exc:
        # The write has committed: it must not answer an error because Redis is down. Figures
        # cached before the outage live at most their timeout.
        logger.warning("statistics generation not moved on, the cache is down: %s", exc)


def statistics_changed() -> None:
    """Call inside a write that changes registry statistics; takes effect when it commits."""
    transaction.on_commit(_next_generation)


def current_generation() -> int:
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        cache.add(GENERATION_KEY, _new_generation(), None)
        generation = cache.get(GENERATION_KEY)
    return generation


def cached_statistics(name: str, compute, timeout: int):
    """``compute()``'s figures, shared through the cache until the next write or ``timeout``."""
    key = f"stats:{current_generation()}:{name}"
    figures = cache.get(key)
    if figures is None:
        figures = compute()
        cache.add(key, figures, timeout)
    return figures
