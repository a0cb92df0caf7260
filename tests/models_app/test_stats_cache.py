"""/stats/ and /api/v1/stats/ share cached figures that no write leaves stale, and a reader
that computed its figures before a write cannot put them back after it."""

import pytest
from django.db import connection
from django.test import Client

from models_app.models import Registration
from models_app.services import usage_record

pytestmark = pytest.mark.django_db


def api_total(field="total_models"):
    return Client().get("/api/v1/stats/").json()[field]


def page_total(field="total_models"):
    return Client().get("/stats/").context["registry"][field]


def test_page_and_api_show_a_write_at_once(register, move, user, other_user,
                                           django_capture_on_commit_callbacks):
    version = move(register(user, "first"), Registration.Status.APPROVED)
    assert (api_total(), page_total()) == (1, 1)  # both cached now
    with django_capture_on_commit_callbacks(execute=True):
        register(user, "second")
    assert (api_total(), page_total()) == (2, 2)
    with django_capture_on_commit_callbacks(execute=True):
        usage_record(registration=version, user=other_user, success=True, duration_us=5)
    assert (api_total("total_executions"), page_total("total_executions")) == (1, 1)
    with django_capture_on_commit_callbacks(execute=True):
        move(version, Registration.Status.SUSPENDED)
    assert (api_total("active_models"), page_total("active_models")) == (0, 0)


@pytest.mark.parametrize("path", ["/api/v1/stats/", "/stats/"])
def test_figures_read_before_a_write_are_not_cached_after_it(path, register, user,
                                                              django_capture_on_commit_callbacks):
    register(user, "first")

    def write_after_the_first_count(execute, sql, params, many, context):
        # The reader has counted the registrations; now a registration commits (and
        # invalidates the cache) before the reader finishes and caches what it counted.
        result = execute(sql, params, many, context)
        if not written and "GROUP BY" in sql and "models_app_registration" in sql:
            written.append(True)
            with django_capture_on_commit_callbacks(execute=True):
                register(user, "second")
        return result

    written = []
    with connection.execute_wrapper(write_after_the_first_count):
        Client().get(path)
    assert written
    assert (api_total(), page_total()) == (2, 2)


def test_a_committed_write_does_not_fail_when_the_cache_is_down(monkeypatch, caplog):
    """The generation moves on after commit; Redis refusing then must not turn the committed
    write into an error, and the move is made when the cache answers again."""
    import redis
    from django.core.cache import cache

    from registry_site import generations, stats_cache

    monkeypatch.setattr(generations, "_lost", set())
    before = stats_cache.current_generation()
    store = getattr(cache, "strict", cache)

    def refuse(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    with monkeypatch.context() as patched:
        for name in ("incr", "add", "bump_many"):
            patched.setattr(store, name, refuse, raising=False)
        assert generations.bump([stats_cache.GENERATION_KEY]) is False
    assert "cached copies not moved on yet" in caplog.text
    assert generations._lost == {stats_cache.GENERATION_KEY}
    assert stats_cache.current_generation() > before  # the next read moved it on
    assert generations._lost == set()
