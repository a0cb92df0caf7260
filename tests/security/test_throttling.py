"""Rate limits: per anonymous address, per user, per token-creation address and username,
per scope; 429 with Retry-After in the error shape; one audit event per window; and one limit
shared by separate processes through Redis."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from registry_site.models import AuditEvent

pytestmark = pytest.mark.django_db

PARAMETERS = "/api/v1/parameters/"


@pytest.fixture
def rates(monkeypatch):
    """Set throttle rates for one test (DRF throttles read this dict at request time)."""

    def set_rates(**values):
        for scope, rate in values.items():
            monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, rate)

    return set_rates


def client_at(ip: str) -> APIClient:
    return APIClient(REMOTE_ADDR=ip)


def test_default_anonymous_limit_is_100_per_minute_then_429_in_error_shape():
    client = client_at("198.51.100.7")
    with time_machine.travel("2026-01-01 12:00:00", tick=False):
        codes = [client.get(PARAMETERS).status_code for _ in range(100)]
        assert codes == [200] * 100
        refused = client.get(PARAMETERS)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    body = refused.json()
    assert body["code"] == "throttled"
    assert body["retry_after"] == 60
    assert "detail" in body
    # Another address has its own budget.
    assert client_at("198.51.100.8").get(PARAMETERS).status_code == 200


def test_retry_after_counts_down_to_the_end_of_the_window():
    client = client_at("198.51.100.9")
    with time_machine.travel("2026-01-01 12:00:00", tick=False) as clock:
        for _ in range(100):
            client.get(PARAMETERS)
        assert client.get(PARAMETERS).status_code == 429
        clock.shift(30)
        assert client.get(PARAMETERS)["Retry-After"] == "30"


def test_window_reopens_after_its_period(rates):
    # A one-second window on the real clock: Redis expires keys by its own clock.
    rates(anon="2/s", user="2/s")
    client = client_at("198.51.100.19")
    assert [client.get(PARAMETERS).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(1.1)
    assert client.get(PARAMETERS).status_code == 200


def test_spoofed_forwarded_for_does_not_buy_a_new_budget(rates):
    rates(anon="3/min", user="3/min")
    client = client_at("198.51.100.10")
    codes = [client.get(PARAMETERS, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
             for n in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_throttled_refusal_is_audited_once_per_window(rates):
    rates(anon="2/min", user="2/min")
    client = client_at("198.51.100.11")
    for _ in range(2):
        client.get(PARAMETERS)
    assert client.get(PARAMETERS).status_code == 429
    assert client.get(PARAMETERS).status_code == 429
    events = AuditEvent.objects.filter(action="security.throttled")
    assert events.count() == 1
    event = events.get()
    assert event.ip == "198.51.100.11"
    assert event.details["path"] == PARAMETERS
    assert [limit["scope"] for limit in event.details["limits"]] == ["anon"]


def test_authenticated_users_are_limited_per_user(client_for, user, other_user, rates):
    rates(user="3/min")
    first, second = client_for(user), client_for(other_user)
    assert [first.get(PARAMETERS).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert second.get(PARAMETERS).status_code == 200
    event = AuditEvent.objects.get(action="security.throttled")
    assert event.actor_id == user.pk


def test_token_creation_is_limited_per_address(user, rates):
    rates(token_create="3/min")
    client = client_at("198.51.100.12")
    codes = [client.post("/api/v1/auth/tokens/", {"username": f"nobody{n}", "password": "x"})
             .status_code for n in range(4)]
    assert codes == [401, 401, 401, 429]


def test_token_creation_is_limited_per_username_across_addresses(user, rates):
    rates(token_create="3/min")
    codes = [client_at(f"198.51.100.{20 + n}").post(
        "/api/v1/auth/tokens/", {"username": "User", "password": "wrong"}).status_code
        for n in range(4)]
    assert codes == [401, 401, 401, 429]
    # The right password does not help either: the username is throttled.
    from tests.conftest import PASSWORD

    response = client_at("198.51.100.99").post(
        "/api/v1/auth/tokens/", {"username": "user", "password": PASSWORD})
    assert response.status_code == 429
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 3


def test_scoped_limit_applies_to_the_declared_method_only(client_for, user, rates):
    """The artifact view declares throttle_scopes = {"put": "register"}."""
    rates(register="2/min")
    client = client_for(user)
    path = "/api/v1/models/none-such/versions/1/artifact/"
    codes = [client.put(path, b"x", content_type="application/octet-stream").status_code
             for _ in range(3)]
    assert codes == [404, 404, 429]
    assert client.get(path).status_code == 404
    event = AuditEvent.objects.get(action="security.throttled")
    assert event.details["limits"] == [{"scope": "register", "rate": "2/min"}]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not os.environ.get("REDIS_URL"),
                    reason="needs a shared Redis: set REDIS_URL (the second pass of .ci/run)")
def test_limit_holds_across_two_processes_sharing_redis():
    """Two Django processes (as two gunicorn workers would be) share one anonymous limit:
    the 101st request in the window is refused whichever process gets it, and requests
    racing in both processes at once still let exactly 100 through."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:"
                        f"{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": os.environ["REDIS_URL"],
        "CACHE_KEY_PREFIX": django_settings.CACHES["default"]["KEY_PREFIX"],
        "DJANGO_ALLOWED_HOSTS": "testserver",
    }
    for name in ("THROTTLE_ANON", "THROTTLE_USER", "IP_ALLOWLIST", "TRUSTED_PROXY_COUNT"):
        env.pop(name, None)
    root = Path(__file__).resolve().parents[2]
    workers = [
        subprocess.Popen([sys.executable, "-m", "tests.security.throttle_worker"], cwd=root,
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"

        def ask(worker, count):
            worker.stdin.write(f"{count}\n")
            worker.stdin.flush()

        def answer(worker):
            return json.loads(worker.stdout.readline())

        a, b = workers
        ask(a, 50)
        assert answer(a) == [200] * 50
        ask(b, 50)
        assert answer(b) == [200] * 50
        ask(b, 1)
        assert answer(b) == [429]
        ask(a, 1)
        assert answer(a) == [429]
        assert AuditEvent.objects.filter(action="security.throttled").count() == 1

        # A fresh window, both processes at once: still exactly 100 pass.
        from django.core.cache import cache

        cache.clear()
        ask(a, 80)
        ask(b, 80)
        codes = answer(a) + answer(b)
        assert codes.count(200) == 100
        assert codes.count(429) == 60
    finally:
        for worker in workers:
            worker.stdin.close()
            worker.wait(timeout=30)


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_login_forms_share_the_token_creation_limit(user, rates, path):
    rates(token_create="3/min")
    codes = [Client(REMOTE_ADDR=f"198.51.100.{40 + n}").post(
        path, {"username": "user", "password": "wrong"}).status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = Client(REMOTE_ADDR="198.51.100.60").post(path, {"username": "USER",
                                                               "password": "x"})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert AuditEvent.objects.filter(action="security.throttled").count() == 1
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 3


def test_registrations_usage_and_votes_have_their_own_limits(client_for, user, other_user,
                                                             moderator, rates):
    from governance_app.services import proposal_create, voting_power_grant
    from tests.security.conftest import register_version

    rates(register="1/min", usage="1/min", vote="1/min")
    client = client_for(user)
    body = {"name": "limited", "version": "1.0.0", "hash": "a" * 64, "size_bytes": 10,
            "parameter_count": 1}
    assert client.post("/api/v1/models/", body).status_code == 201
    assert client.post("/api/v1/models/", {**body, "version": "2"}).status_code == 429

    approved = register_version(other_user, b"x" * 10, name="used-model", approve_by=moderator)
    usage = {"version": approved.version, "success": True, "duration_us": 5}
    assert client.post("/api/v1/models/used-model/usage/", usage).status_code == 201
    assert client.post("/api/v1/models/used-model/usage/", usage).status_code == 429

    voting_power_grant(user=user, power=100_000, reason="test")
    proposal = proposal_create(proposer=user, type="parameter_change", title="Quorum",
                               payload={"parameter": "quorum_bps", "value": 500, "reason": "t"})
    vote = f"/api/v1/proposals/{proposal.pk}/vote/"
    assert client.post(vote, {"choice": "for"}).status_code == 201
    assert client.post(vote, {"choice": "for"}).status_code == 429
    scopes = [limit["scope"] for event in AuditEvent.objects.filter(action="security.throttled")
              for limit in event.details["limits"]]
    assert sorted(scopes) == ["register", "usage", "vote"]


def test_pages_share_the_per_address_limit(rates, db):
    """The HTML pages are no way around the API's limits: they count in the same buckets."""
    rates(anon="3/min", user="3/min")
    client = Client(REMOTE_ADDR="198.51.100.40")
    codes = [client.get("/proposals/").status_code for _ in range(3)]
    refused = client.get("/")
    assert codes == [200, 200, 200]
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert client_at("198.51.100.40").get(PARAMETERS).status_code == 429
    assert client.get("/healthz").status_code == 200
    assert AuditEvent.objects.filter(action="security.throttled").count() == 1


def test_signed_in_pages_count_per_user(rates, make_user):
    rates(anon="1000/min", user="2/min")
    user = make_user("pager")
    client = Client(REMOTE_ADDR="198.51.100.41")
    client.force_login(user)
    assert [client.get("/account/").status_code for _ in range(3)] == [200, 200, 429]


# NFKC spellings: Django's login form signs "u９", "𝑢９" and "ⓤ9" in as "u9".
SPELLINGS = ["u9", "u\uff19", "\U0001d462\uff19", "\u24e49"]


def test_nfkc_spellings_share_the_per_username_token_budget(make_user, rates):
    make_user("u9")
    rates(token_create="3/min")
    codes = [client_at(f"198.51.100.{70 + n}").post(
        "/api/v1/auth/tokens/", {"username": spelling, "password": "wrong"}, format="json"
    ).status_code for n, spelling in enumerate(SPELLINGS)]
    assert codes == [401, 401, 401, 429]
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 3


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_nfkc_spellings_share_the_per_username_login_budget(make_user, rates, path):
    make_user("u9")
    rates(token_create="3/min")
    # The form normalises with NFKC, so each of these really is a password guess for u9.
    codes = [Client(REMOTE_ADDR=f"198.51.100.{80 + n}").post(
        path, {"username": spelling, "password": "wrong"}).status_code
        for n, spelling in enumerate(SPELLINGS)]
    assert codes == [200, 200, 200, 429]
    failed = AuditEvent.objects.filter(action="auth.login_failed")
    assert [event.details["username"] for event in failed.order_by("id")] == ["u9"] * 3


def test_garbage_bearer_tokens_count_against_the_anonymous_limit():
    client = client_at("198.51.100.90")
    client.credentials(HTTP_AUTHORIZATION="Bearer air_not-a-real-token")
    with time_machine.travel("2026-01-01 12:00:00", tick=False):
        responses = [client.get(PARAMETERS) for _ in range(150)]
        # The address's budget is spent for anonymous requests too.
        assert client_at("198.51.100.90").get(PARAMETERS).status_code == 429
    codes = [response.status_code for response in responses]
    assert codes == [401] * 100 + [429] * 50
    assert responses[100].json()["code"] == "throttled"
    assert responses[100]["Retry-After"] == "60"
    assert AuditEvent.objects.filter(action="security.throttled").count() == 1


def test_permission_refusals_count_against_the_address(client_for, user, rates):
    """A signed-in client refused by a permission check (here: not a moderator) spends the
    anonymous budget of its address, which it could otherwise hammer without limit."""
    rates(anon="3/min", user="1000/min")
    client = client_for(user)
    client.defaults["REMOTE_ADDR"] = "198.51.100.91"
    codes = [client.get("/api/v1/audit-events/").status_code for _ in range(5)]
    assert codes == [403, 403, 403, 429, 429]
    assert client.get(PARAMETERS).status_code == 200  # allowed requests still pass
    assert AuditEvent.objects.filter(action="security.permission_denied").count() == 3


def test_anonymous_refusals_are_counted_once(rates):
    """An anonymous write the permission check refuses counts once, not twice."""
    rates(anon="4/min")
    client = client_at("198.51.100.92")
    codes = [client.post("/api/v1/models/", {}).status_code for _ in range(5)]
    assert codes == [401, 401, 401, 401, 429]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_a_scoped_request_counts_both_its_limits_in_one_round_trip(client_for, user, rates):
    from django.core.cache import caches

    from tests.redis_helpers import commands_sent

    rates(user="5/min", register="2/min")
    client = client_for(user)
    path = "/api/v1/models/none-such/versions/1/artifact/"
    codes = []
    commands = commands_sent(caches["throttles"], lambda: codes.extend(
        client.put(path, b"x", content_type="application/octet-stream").status_code
        for _ in range(3)))
    assert codes == [404, 404, 429]
    assert commands.count("EVALSHA") + commands.count("EVAL") == 3  # one per request
    # The third request counted in the caller's limit too: two more and it is refused.
    assert [client.get(PARAMETERS).status_code for _ in range(3)] == [200, 200, 429]


def test_every_answer_carries_the_rate_limit_state(rates):
    rates(anon="5/min")
    client = client_at("198.51.100.40")
    with time_machine.travel("2026-01-01 12:00:00", tick=False) as clock:
        first = client.get(PARAMETERS)
        assert (first["RateLimit-Limit"], first["RateLimit-Remaining"],
                first["RateLimit-Reset"]) == ("5", "4", "60")
        clock.shift(20)
        answers = [client.get(PARAMETERS) for _ in range(4)]
        assert [a["RateLimit-Remaining"] for a in answers] == ["3", "2", "1", "0"]
        assert answers[-1]["RateLimit-Reset"] == "40"
        refused = client.get(PARAMETERS)
    assert refused.status_code == 429
    assert (refused["RateLimit-Remaining"], refused["RateLimit-Reset"]) == ("0", "40")
    assert refused["Retry-After"] == "40"


def test_the_tightest_of_a_requests_limits_is_the_one_shown(rates, client_for, user):
    rates(user="50/min", usage="3/min")
    api = client_for(user)
    with time_machine.travel("2026-01-01 12:00:00", tick=False):
        read = api.get(PARAMETERS)
        assert (read["RateLimit-Limit"], read["RateLimit-Remaining"]) == ("50", "49")
        # The usage scope's 3/min is nearer to refusing than the user's 48 left.
        usage = api.post("/api/v1/models/none/usage/", {"success": True, "duration_us": 1},
                         format="json")
    assert usage.status_code == 404
    assert (usage["RateLimit-Limit"], usage["RateLimit-Remaining"]) == ("3", "2")


def test_a_refused_token_counts_and_says_so(rates):
    rates(anon="10/min")
    client = client_at("198.51.100.41")
    client.credentials(HTTP_AUTHORIZATION="Bearer air_not-a-token")
    with time_machine.travel("2026-01-01 12:00:00", tick=False):
        response = client.get(PARAMETERS)
    assert response.status_code == 401
    assert (response["RateLimit-Limit"], response["RateLimit-Remaining"]) == ("10", "9")
