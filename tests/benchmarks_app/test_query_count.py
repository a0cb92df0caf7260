"""X-Query-Count exists only when BENCH_QUERY_COUNT installs its middleware."""

import pytest
from django.conf import settings

from benchmarks_app.middleware import QueryCountMiddleware

MIDDLEWARE_PATH = "benchmarks_app.middleware.QueryCountMiddleware"

pytestmark = pytest.mark.django_db


def test_not_installed_by_default(client):
    assert MIDDLEWARE_PATH not in settings.MIDDLEWARE
    assert settings.BENCH_QUERY_COUNT is False
    assert "X-Query-Count" not in client.get("/api/v1/stats/").headers


def test_counts_the_queries_of_a_request(client, settings, django_assert_num_queries):
    settings.MIDDLEWARE = [MIDDLEWARE_PATH, *settings.MIDDLEWARE]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        answer = client.get("/api/v1/models/?page_size=5")
    assert answer.status_code == 200
    assert int(answer.headers["X-Query-Count"]) == len(captured.captured_queries) > 0


def test_the_setting_installs_it(monkeypatch):
    import importlib

    import registry_site.settings as module

    monkeypatch.setenv("BENCH_QUERY_COUNT", "1")
    try:
        assert importlib.reload(module).MIDDLEWARE[0] == MIDDLEWARE_PATH
    finally:
        monkeypatch.delenv("BENCH_QUERY_COUNT")
        importlib.reload(module)


def test_a_view_without_queries_reports_zero(rf):
    answer = QueryCountMiddleware(lambda request: __import__("django").http.HttpResponse())(
        rf.get("/"))
    assert answer["X-Query-Count"] == "0"
