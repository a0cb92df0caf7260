"""Rendered anonymous answers of the model detail and the model list, shared through the cache.

An anonymous caller sees exactly the approved versions, so every anonymous request for a URL
gets the same bytes; signed-in callers see more (their own versions, open proposals, all of
it for moderators) and are never served from here. Each subject (a model name, or CATALOG for
the list pages) has a generation number, moved on when a write that changes what it shows
commits; an answer is stored with the generation read before the database was, and served
only while that is still the current one. An answer computed from data older than a commit
therefore carries the old generation and is never served after the commit's bump, as in
registry_site.stats_cache. A hit costs one cache round trip (the generation and the answer
in one MGET) and no query.

The list pages follow every change but one: a usage record moves only its model's generation,
not the catalog's (else every execution anywhere would empty the list cache). The execution
counts on an anonymous list page are therefore up to LIST_ANSWER_SECONDS old; statuses,
versions and everything else on it are exact, and the model detail's counts are exact.

The generations move on when the write commits, with every other counter the transaction
changed, in one round trip (registry_site.generations). If the cache is unreachable then, the
process keeps the keys and moves them on at its next cache read that reaches Redis (a process
that serves writes also serves reads); answers live at most ANSWER_SECONDS, which bounds how
long an outage that also ends the process can leave an old answer in place.
"""

import hashlib
import time

from django.core.cache import cache

from registry_site import generations

# Generations keep answers exact; the lifetime only bounds a lost bump (see above) and the
# memory of names nobody reads any more.
ANSWER_SECONDS = 300
# The anonymous list pages: how old their execution counts may be (see above).
LIST_ANSWER_SECONDS = 2
# The list pages' subject: "*" is in no model name.
CATALOG = "*catalog"


def _generation_key(name: str) -> str:
    return f"model-detail:gen:{name}"


def model_changed(name: str, *, counters_only: bool = False) -> None:
    """Call inside a write that changes what the detail of ``name`` shows, and so the list
    pages too, unless only its usage counters moved (``counters_only``). The generations move
    on when the write commits (registry_site.generations); until then this transaction's own
    reads of them neither use nor store cached answers."""
    subjects = (name,) if counters_only else (name, CATALOG)
    generations.changed(*(_generation_key(subject) for subject in subjects))


def answer_key(name: str, variant: str) -> str:
    # The variant (scheme, host, the query) is client text: hashed, any of it fits a key.
    digest = hashlib.sha256(variant.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"model-detail:{name}:{digest}"


def cached_answer(name: str, variant: str) -> tuple[bytes | None, int | None]:
    """(the stored answer if it is current, the generation to store a new one under); (None,
    None) inside a transaction that changed ``name`` (nothing served, nothing stored)."""
    gen_key, key = _generation_key(name), answer_key(name, variant)
    if generations.pending(gen_key):
        return None, None
    found = cache.get_many([gen_key, key])
    # The cache answers again: first move on what a write could not while it was down.
    if generations.lost_any() and found and gen_key in generations.retry_lost():
        found = cache.get_many([gen_key, key])
    generation = found.get(gen_key)
    if generation is None:
        cache.add(gen_key, time.time_ns(), None)
        return None, cache.get(gen_key)
    stored = found.get(key)
    if stored is not None and stored[0] == generation:
        return stored[1], generation
    return None, generation


def store_answer(name: str, variant: str, generation: int | None, content: bytes,
                 seconds: int = ANSWER_SECONDS) -> None:
    if generation is not None:
        cache.set(answer_key(name, variant), (generation, content), seconds)
