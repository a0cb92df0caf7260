"""Governable parameters: their definitions, bounds, and the one cached accessor."""

import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

from registry_site.errors import CACHE_ERRORS, CacheUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: int
    minimum: int
    maximum: int
    description: str


PARAMETER_SPECS: dict[str, ParameterSpec] = {
    spec.name: spec
    for spec in [
        ParameterSpec(
            "voting_period_seconds", 604_800, 60, 2_592_000,
            "How long a proposal is open for votes (1 minute to 30 days).",
        ),
        ParameterSpec(
            "execution_period_seconds", 1_209_600, 7_200, 7_776_000,
            "Time from a proposal's creation until its execution deadline (2 hours to 90 days).",
        ),
        ParameterSpec(
            "min_voting_power", 1_000, 1, 10**15,
            "Voting power needed to create a proposal.",
        ),
        ParameterSpec(
            "max_model_size", 104_857_600, 1, 10**12,
            "Largest artifact size, in bytes, a registration may declare.",
        ),
        ParameterSpec(
            "max_parameter_count", 1_000_000_000, 1, 10**13,
            "Largest parameter count a registration may declare.",
        ),
        ParameterSpec(
            "quorum_bps", 400, 1, 10_000,
            "Quorum in basis points of the total voting power at a proposal's snapshot.",
        ),
        ParameterSpec(
            "registrations_paused", 0, 0, 1,
            "Emergency switch: 1 refuses new registrations, 0 accepts them.",
        ),
    ]
}

CACHE_PREFIX = "parameter:"
CACHE_TIMEOUT = 300
# What a parameter's cache key holds while a change to it is being committed: "read the
# database, cache nothing". It outlives any transaction, so no reader can cache the old value
# between the change's commit and its publication (see publish_parameter).
CHANGING = "changing"


def cache_key(name: str) -> str:
    return f"{CACHE_PREFIX}{name}"


def get_parameter(name: str) -> int:
    """The current value of a governable parameter, read through the shared cache.

    While Redis is down the cache fails open (registry_site.cache): every read asks the
    database, which holds the truth, so parameters keep working, only slower.
    """
    from registry_site.models import Parameter

    spec = PARAMETER_SPECS[name]
    value = cache.get(cache_key(name))
    if value is None or value == CHANGING:
        cached = value
        value = Parameter.objects.filter(name=name).values_list("value", flat=True).first()
        if value is None:
            value = spec.default
        if cached is None:
            # add, not set: if a change is being committed (the key holds CHANGING) or has
            # published its value since this read, the value read here must not replace it.
            cache.add(cache_key(name), value, CACHE_TIMEOUT)
    return value


def publish_parameter(name: str, value: int) -> None:
    """Make a changed value visible to every worker; called inside parameter_set's transaction.

    Before the commit the key is set to CHANGING through the strict client: while Redis is
    unreachable the change is refused (503, rolled back), and from then on no reader caches
    anything for this parameter, so a reader that read the old row cannot cache it. After the
    commit the new value replaces the marker. If Redis fails at that moment, the marker stays
    (readers ask the database, which holds the new value) until it expires, and the next
    reader then caches the committed value: Redis never serves the old value again.
    A rolled-back change leaves the marker too, costing database reads until it expires.
    """
    strict = getattr(cache, "strict", cache)  # the fail-open Redis cache's raising twin
    key = cache_key(name)
    try:
        strict.set(key, CHANGING, CACHE_TIMEOUT)
    except CACHE_ERRORS as exc:
        raise CacheUnavailable(
            "Parameters cannot change while the cache is unreachable. Try again shortly."
        ) from exc

    def publish():
        try:
            strict.set(key, value, CACHE_TIMEOUT)
        except CACHE_ERRORS as exc:
            # Committed: the marker keeps readers on the database until it expires.
            logger.warning("parameter %s: publishing %s failed, readers use the database "
                           "until the marker expires: %s", name, value, exc)

    # After commit, never before: a rollback must not leave the new value in the cache.
    transaction.on_commit(publish)
