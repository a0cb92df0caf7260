"""Registry-wide statistics in the shared cache, never stale after a write.

Figures are cached under a generation number, and every write that changes them moves the
generation on when it commits. A reader reads the generation before it computes, so figures
computed before a write can only ever be cached under the old generation, which no reader
looks at again: unlike deleting a key, which a slow reader could fill back with stale
figures right after. Within one generation readers ``add``, never ``set``, as parameters do.
"""

import time

from django.core.cache import cache

from registry_site import generations

GENERATION_KEY = "stats:generation"


def _new_generation() -> int:
    # Starts from the clock, never from 0: if the key is evicted, the new numbers are never
    # ones that figures are still cached under.
    return time.time_ns()


def statistics_changed() -> None:
    """Call inside a write that changes registry statistics; takes effect when it commits
    (registry_site.generations), with the transaction's other cache generations."""
    generations.changed(GENERATION_KEY)


def current_generation() -> int:
    if generations.lost_any():
        generations.retry_lost()  # the cache answers again: move on what a write could not
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        cache.add(GENERATION_KEY, _new_generation(), None)
        generation = cache.get(GENERATION_KEY)
    return generation


def cached_statistics(name: str, compute, timeout: int):
    """``compute()``'s figures, shared through the cache until the next write or ``timeout``."""
    if generations.pending(GENERATION_KEY):
        return compute()  # this transaction changed them: figures no one else sees yet
    key = f"stats:{current_generation()}:{name}"
    figures = cache.get(key)
    if figures is None:
        figures = compute()
        cache.add(key, figures, timeout)
    return figures
