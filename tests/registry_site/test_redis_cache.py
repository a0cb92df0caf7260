"""The project's Redis cache client against a real Redis (pass 2 of CI sets REDIS_URL)."""

import os
import threading
import uuid

import pytest

from registry_site.cache import RedisCache
from tests.redis_helpers import commands_sent

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")


@pytest.fixture
def redis_cache():
    store = RedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": f"test-{uuid.uuid4().hex}"})
    yield store
    store.clear()


def test_incr_keeps_djangos_contract(redis_cache):
    with pytest.raises(ValueError):
        redis_cache.incr("missing")
    assert redis_cache.get("missing") is None  # a failed incr creates nothing
    redis_cache.set("counter", 5)
    assert redis_cache.incr("counter") == 6
    assert redis_cache.incr("counter", 10) == 16
    assert redis_cache.get("counter") == 16
    redis_cache.delete("counter")
    with pytest.raises(ValueError):
        redis_cache.incr("counter")


def test_incr_is_one_round_trip_and_exact_under_concurrency(redis_cache):
    redis_cache.set("hits", 0)
    redis_cache.incr("hits")  # the server learns the script (SCRIPT LOAD) on first use
    assert commands_sent(redis_cache, lambda: redis_cache.incr("hits")) == ["EVALSHA"]

    def hammer():
        for _ in range(50):
            redis_cache.incr("hits")

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert redis_cache.get("hits") == 402


def test_bump_many_moves_every_counter_on_in_one_round_trip(redis_cache):
    redis_cache.set("gen-a", 7)
    redis_cache.bump_many(["gen-a", "gen-b"], 1_000)  # gen-b is missing: it starts at 1,000
    assert redis_cache.get_many(["gen-a", "gen-b"]) == {"gen-a": 8, "gen-b": 1_000}
    assert commands_sent(redis_cache, lambda: redis_cache.bump_many(["gen-a", "gen-b"],
                                                                    1_000)) == ["EVALSHA"]
    assert redis_cache.get_many(["gen-a", "gen-b"]) == {"gen-a": 9, "gen-b": 1_001}
    assert redis_cache.incr("gen-b") == 1_002  # still a plain counter to Django


def test_count_hits_counts_every_window_and_its_end_in_one_round_trip(redis_cache):
    now = 1_800_000_000.0
    assert redis_cache.count_hits([("per-user", 60), ("per-scope", 1)], now) == [
        (1, now + 60), (1, now + 1)]
    assert redis_cache.get("per-user:reset") == now + 60  # the same digits Django writes
    assert commands_sent(redis_cache, lambda: redis_cache.count_hits(
        [("per-user", 60), ("per-scope", 1)], now + 5)) == ["EVALSHA"]
    # A window keeps the end it opened with; its counter expires with it.
    assert redis_cache.count_hits([("per-user", 60)], now + 9) == [(3, now + 60)]
    client = redis_cache._cache.get_client(write=True)
    assert 0 < client.pttl(redis_cache.make_and_validate_key("per-user")) <= 60_000
    assert redis_cache.get("per-user") == 3  # a plain counter to Django


def test_count_hits_reopens_a_counter_left_without_a_timeout(redis_cache):
    client = redis_cache._cache.get_client(write=True)
    key = redis_cache.make_and_validate_key("stuck")
    client.set(key, 41)  # as a bare INCR on an expired key leaves it: it would never reset
    assert redis_cache.count_hits([("stuck", 60)], 1_000.0) == [(42, 1_060.0)]
    assert 0 < client.pttl(key) <= 60_000


def test_count_hits_reads_a_window_end_it_cannot_parse_as_unknown(redis_cache):
    redis_cache.count_hits([("older", 60)], 1_000.0)
    redis_cache.set("older:reset", 1_060.5)  # an earlier release stored a pickled float
    assert redis_cache.count_hits([("older", 60)], 1_001.0) == [(2, None)]
