"""Rendered anonymous answers of the model detail and the model list, shared through the cache.

An anonymous caller sees exactly the approved versions, so every anonymous request for a URL
gets the same bytes. Signed-in callers may see more: their own versions, versions under an
open proposal (models_app.models.VISIBILITY_PROVIDERS), everything for moderators. A signed-in
caller who is not a moderator gets the anonymous detail of a model only when the model's
members' view says it is theirs too (``members_view`` below); moderators and list pages of
signed-in callers are never served from here; the members' view has a generation of its own,
which usage records leave in place. Each subject (a model name, or CATALOG for
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
from django.db.models import Count, Q, Value
from django.utils import timezone

from models_app.models import Registration, member_extras
from registry_site import generations
from registry_site.compiled import MARKER_TEXT, MARKER_TIME, Compiled

# Generations keep answers exact; the lifetime only bounds a lost bump (see above) and the
# memory of names nobody reads any more.
ANSWER_SECONDS = 300
# The anonymous list pages: how old their execution counts may be (see above).
LIST_ANSWER_SECONDS = 2
# The list pages' subject: "*" is in no model name.
CATALOG = "*catalog"


def _generation_key(name: str) -> str:
    return f"model-detail:gen:{name}"


def _members_key(name: str) -> str:
    return f"model-detail:members:{name}"


def _members_generation_key(name: str) -> str:
    return f"model-detail:members-gen:{name}"


def model_changed(name: str, *, detail_only: bool = False, members: bool = True) -> None:
    """Call inside a write that changes what the detail of ``name`` shows, and so the list
    pages too, unless the list pages do not show the change (``detail_only``: usage counters,
    which list pages may show late, or a version that only signed-in callers now see). A write
    that changes no version's owner or status and opens no proposal (usage counters) passes
    ``members=False``: the members' view of ``name`` stays (``cached_member_answer``). The
    generations move on when the write commits (registry_site.generations); until then this
    transaction's own reads of them neither use nor store cached answers."""
    keys = [_generation_key(name)]
    if not detail_only:
        keys.append(_generation_key(CATALOG))
    if members:
        keys.append(_members_generation_key(name))
    generations.changed(*keys)


# Moves on whenever the answers' JSON changes shape, so that a deployment never serves an
# answer the previous release rendered (2: empty source_url is null).
ANSWER_FORMAT = 2


def answer_key(name: str, variant: str) -> str:
    # The variant (scheme, host, the query) is client text: hashed, any of it fits a key.
    digest = hashlib.sha256(variant.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"model-detail:v{ANSWER_FORMAT}:{name}:{digest}"


def _lookup(name: str, variant: str, *more: str) -> tuple[bytes | None, int | None, dict]:
    """(the stored answer if current, the current generation, every key found), in one
    round trip: the generation, the answer and ``more``."""
    gen_key, key = _generation_key(name), answer_key(name, variant)
    keys = [gen_key, key, *more]
    found = cache.get_many(keys)
    # The cache answers again: first move on what a write could not while it was down.
    if generations.lost_any() and found and not generations.retry_lost().isdisjoint(keys):
        found = cache.get_many(keys)
    generation = found.get(gen_key)
    if generation is None:
        return None, _started(gen_key), {}
    stored = found.get(key)
    if stored is not None and stored[0] == generation:
        return stored[1], generation, found
    return None, generation, found


def _started(gen_key: str) -> int | None:
    """A generation that is not in the cache (new, or evicted) starts from the clock, never
    from 0, so it never repeats a number copies were stored under; None with the cache down."""
    cache.add(gen_key, time.time_ns(), None)
    return cache.get(gen_key)


def cached_answer(name: str, variant: str) -> tuple[bytes | None, int | None]:
    """(the stored answer if it is current, the generation to store a new one under); (None,
    None) inside a transaction that changed ``name`` (nothing served, nothing stored)."""
    if generations.pending(_generation_key(name)):
        return None, None
    content, generation, _ = _lookup(name, variant)
    return content, generation


def cached_member_answer(name: str, variant: str, *, user_id: int
                         ) -> tuple[bytes | None, int | None, bool]:
    """For a signed-in caller who is not a moderator: (the stored anonymous answer if it is
    current, the generation to store one under, whether the anonymous answer is this caller's
    answer too). When it is not (the caller owns versions of ``name``, or an open proposal
    shows signed-in callers a version anonymous callers do not see), the caller's own read
    answers and nothing is stored; nor inside a transaction that changed ``name``.

    Why the members' view stays right until its generation moves: a signed-in caller sees the
    approved versions, their own, and those the visibility providers add. An owner is never
    served from here. The providers' versions are the same for every signed-in caller, join
    only by a write that calls ``model_changed`` (a new proposal), and may leave at any time
    without one (its voting ends). The detail shows the newest visible versions, or the one
    asked for. If the providers add nothing when the view is read, the members' set equals the
    anonymous set; until the next bump it can only shrink back towards it, and both bounds give
    the same answer.

    The view has a generation of its own, moved by every write that calls ``model_changed``
    except those that pass ``members=False``: a usage record changes counters, not who owns a
    version, its status or a proposal, so the many usage records of a busy model leave the
    view in place and its signed-in readers need no query for it. The view is read after its
    generation, like an answer after the answer's.
    """
    if generations.pending(_generation_key(name)):
        return None, None, False
    members_key, members_gen_key = _members_key(name), _members_generation_key(name)
    content, generation, found = _lookup(name, variant, members_gen_key, members_key)
    if generation is None:
        return None, None, False  # the cache is down: nothing to share, the caller's own read
    members_generation = found.get(members_gen_key)
    if members_generation is None:
        members_generation = _started(members_gen_key)
        if members_generation is None:
            return None, None, False
    view = found.get(members_key)
    if view is None or view[0] != members_generation:
        view = (members_generation, *members_view(name))
        cache.set(members_key, view, ANSWER_SECONDS)
    _, owners, extras = view
    if extras or user_id in owners:
        return None, None, False
    return content, generation, True


def _members_view(name: str, now):
    versions = Registration.objects.filter(name=name).order_by().values("owner_id")
    extras = member_extras(now)
    extra = Value(0) if extras is None else Count(
        "pk", filter=extras & ~Q(status=Registration.Status.APPROVED))
    return versions.annotate(extra=extra).values_list("owner_id", "extra")


# Compiled once (registry_site.compiled): read on the first signed-in read of a model after
# each write on it.
_MEMBERS_VIEW = Compiled(_members_view, optional=("now",), name=MARKER_TEXT, now=MARKER_TIME)


def members_view(name: str) -> tuple[frozenset[int], bool]:
    """Who owns versions of ``name``, and whether the visibility providers show signed-in
    callers any version of it that is not approved (one query)."""
    rows = _MEMBERS_VIEW.rows(name=name, now=timezone.now())
    return frozenset(owner for owner, _ in rows), any(extra for _, extra in rows)


def store_answer(name: str, variant: str, generation: int | None, content: bytes,
                 seconds: int = ANSWER_SECONDS) -> None:
    if generation is not None:
        cache.set(answer_key(name, variant), (generation, content), seconds)
