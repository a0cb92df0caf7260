"""Governable parameters: their definitions, bounds, and the one cached accessor."""

from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

from registry_site.errors import CACHE_ERRORS, CacheUnavailable


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
    if value is None:
        value = Parameter.objects.filter(name=name).values_list("value", flat=True).first()
        if value is None:
            value = spec.default
        # add, not set: if parameter_set committed and cached its new value after this read,
        # the stale value read here must not overwrite it.
        cache.add(cache_key(name), value, CACHE_TIMEOUT)
    return value


def publish_parameter(name: str, value: int) -> None:
    """Make a changed value visible to every worker; called inside parameter_set's transaction.

    Fails closed: while the cache is unreachable the change is refused (503, rolled back).
    Redis may come back still holding the old value, and it would then outlive the change for
    up to CACHE_TIMEOUT: an emergency pause that does not pause.
    """
    strict = getattr(cache, "strict", cache)  # the fail-open Redis cache's raising twin
    try:
        strict.has_key(cache_key(name))
    except CACHE_ERRORS as exc:
        raise CacheUnavailable(
            "Parameters cannot change while the cache is unreachable. Try again shortly."
        ) from exc
    # After commit, never before: a rollback must not leave the new value in the cache.
    # Setting (rather than deleting) wins over a reader that read the old row just before
    # the commit, since get_parameter only adds to the cache.
    transaction.on_commit(lambda: cache.set(cache_key(name), value, CACHE_TIMEOUT))
