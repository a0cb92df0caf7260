"""The project's Redis cache client against a real Redis (pass 2 of CI sets REDIS_URL)."""

import os
import threading
import uuid

import pytest

from registry_site.cache import RedisCache

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")


@pytest.fixture
def redis_cache():
    store = RedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": f"test-{uuid.uuid4().hex}"})
    yield store
    store.clear()


def commands_sent(redis_cache, call) -> list[str]:
    """The Redis commands ``call`` sends through the cache's client."""
    client = redis_cache._cache.get_client(write=True)
    commands, send = [], client.execute_command

    def counted(*args, **kwargs):
        commands.append(args[0])
        return send(*args, **kwargs)

    client.execute_command = counted
    try:
        call()
    finally:
        del client.execute_command
    return commands


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
