"""Account, health, metrics, the schema and the one error shape."""

import pytest
from django.core.cache import cache

from fees_app.services import account_credit, fee_charge
from registry_site.views import METRICS_CACHE_KEY

pytestmark = pytest.mark.django_db


def test_account_as_user(user, user_client):
    fee_charge(user=user, fee_type="execution", units=1)
    response = user_client.get("/api/v1/account/")
    assert response.status_code == 200
    data = response.json()
    assert {"username", "balance", "voting_power", "groups"} <= set(data)
    assert (data["username"], data["balance"], data["voting_power"], data["groups"]) == (
        "user", 1_000_000 - 100, 0, [])


def test_account_as_moderator(moderator_client):
    data = moderator_client.get("/api/v1/account/").json()
    assert (data["username"], data["groups"]) == ("mod", ["moderators"])
    assert data["is_moderator"] is True


def test_account_of_a_new_user_is_zero(make_user, client_for):
    data = client_for(make_user("newbie")).get("/api/v1/account/").json()
    assert (data["balance"], data["voting_power"]) == (0, 0)


def test_account_refused_to_anonymous(anon_client):
    response = anon_client.get("/api/v1/account/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided.",
                                "code": "not_authenticated"}


def test_account_is_read_only(user_client):
    assert user_client.post("/api/v1/account/", {"balance": 10**9},
                            format="json").status_code == 405


def test_insufficient_funds_is_a_402_with_needed_and_balance(make_user, client_for):
    from registry_site.errors import InsufficientFunds, exception_handler

    poor = make_user(balance=10)
    with pytest.raises(InsufficientFunds) as refused:
        fee_charge(user=poor, fee_type="execution", units=1)
    response = exception_handler(refused.value, {})
    assert response.status_code == 402
    assert response.data["code"] == "insufficient_funds"
    assert (response.data["needed"], response.data["balance"]) == (100, 10)


def test_unknown_api_route_is_404(user_client):
    assert user_client.get("/api/v1/no-such-thing/").status_code == 404


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_503_when_the_cache_is_down(client, settings):
    nowhere = {"LOCATION": "redis://127.0.0.1:1/0"}
    settings.CACHES = {
        "default": {"BACKEND": "registry_site.cache.FailOpenRedisCache", **nowhere},
        "throttles": {"BACKEND": "django.core.cache.backends.redis.RedisCache", **nowhere},
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "cache": "error"}


def test_healthz_answers_get_only(client):
    assert client.post("/healthz").status_code == 405


def test_metrics_is_prometheus_text(client, user):
    fee_charge(user=user, fee_type="execution", units=1)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert 'ai_registry_fees_collected{fee_type="execution"} 100.0' in body
    assert "ai_registry_audit_events" in body


def test_schema_and_docs_pages(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/fees/calculate/" in schema.content
    audit_list = client.get("/api/schema/?format=json").json()["paths"]["/api/v1/audit-events/"]
    assert "action" in {p["name"] for p in audit_list["get"]["parameters"]}
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_schema_validates_without_warnings():
    """Covers every app's views: a failure names the view that produced the warning."""
    import subprocess
    import sys

    from django.conf import settings

    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--file", "/dev/null"],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]



def test_metrics_are_computed_at_most_every_few_seconds(anon_client, user):
    first = anon_client.get("/metrics").content
    account_credit(user=user, amount=5, reason="more")  # one more audit event
    assert anon_client.get("/metrics").content == first
    cache.delete(METRICS_CACHE_KEY)  # what the cache's 15 s expiry does
    assert anon_client.get("/metrics").content != first
