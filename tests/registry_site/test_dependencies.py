"""When the database or Redis stops: 503 in the error shape where the registry cannot answer,
normal service where it can; and a parameter change reaches every process at once."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError, connection
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from registry_site.errors import CacheUnavailable
from registry_site.models import ApiToken, ParameterChange
from registry_site.parameters import cache_key, get_parameter
from registry_site.services import parameter_set, token_create
from tests.conftest import PASSWORD

ROOT = django_settings.BASE_DIR
DATABASE_DOWN = {"detail": "The database is not answering. Try again shortly.",
                 "code": "database_unavailable"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- PostgreSQL (or any database) down -------------------------------------------------------

def refuse_connection(execute, sql, params, many, context):
    """What Django raises when the server refuses connections (psycopg's message)."""
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: '
                           "Connection refused")


@pytest.fixture
def database_down(db):
    with connection.execute_wrapper(refuse_connection):
        yield


@pytest.mark.parametrize("path", ["/api/v1/parameters/", "/api/v1/models/", "/api/v1/stats/"])
def test_api_answers_503_database_unavailable(database_down, path):
    response = APIClient(raise_request_exception=False).get(path)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == DATABASE_DOWN


def test_token_authentication_with_the_database_down_is_503(user):
    _, secret = token_create(user=user)
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    with connection.execute_wrapper(refuse_connection):
        response = api.get("/api/v1/account/")
    assert response.status_code == 503
    assert response.json() == DATABASE_DOWN


@pytest.mark.parametrize("path", ["/", "/proposals/", "/stats/"])
def test_pages_answer_a_plain_503_page(database_down, path):
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code == 503
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b"<h1>Service unavailable</h1>" in response.content
    assert b"The database is not answering" in response.content


def test_a_session_read_in_middleware_is_503_not_500(user):
    """The session is read by middleware, before any view: handler500 answers that one."""
    client = Client(raise_request_exception=False)
    client.force_login(user)
    with connection.execute_wrapper(refuse_connection):
        page = client.get("/account/")
        api = client.get("/api/v1/account/")
    assert page.status_code == 503
    assert b"Service unavailable" in page.content
    assert api.status_code == 503
    assert api.json() == DATABASE_DOWN


def test_with_debug_on_errors_raised_in_middleware_are_still_json_under_api(user, settings):
    """With DEBUG on (``make run``), Django answers errors raised in middleware with its HTML
    debug page; under /api/ they still leave in the error shape."""
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    client.force_login(user)
    with connection.execute_wrapper(refuse_connection):
        api = client.get("/api/v1/account/")
        page = client.get("/account/")
    assert (api.status_code, api["Content-Type"]) == (503, "application/json")
    assert api.json() == DATABASE_DOWN
    assert page.status_code == 500  # pages keep Django's debug page for developers
    bad_host = Client().get("/api/v1/parameters/", HTTP_HOST="evil.example")
    assert (bad_host.status_code, bad_host["Content-Type"]) == (400, "application/json")
    assert bad_host.json()["code"] == "disallowed_host"


def test_healthz_still_answers_503_with_the_database_down(database_down):
    response = Client(raise_request_exception=False).get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "error", "cache": "ok"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_stopped_postgresql_server_is_503(user):
    """A real refused connection: the connection is pointed at a port nobody listens on."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["PORT"] = str(free_port())
    try:
        api = APIClient(raise_request_exception=False).get("/api/v1/parameters/")
        page = Client(raise_request_exception=False).get("/proposals/")
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert api.status_code == 503
    assert api.json() == DATABASE_DOWN
    assert page.status_code == 503
    assert b"Service unavailable" in page.content


# --- Redis stopped mid-run -------------------------------------------------------------------

class RedisServer:
    """A throw-away redis-server on a spare port, stopped and started by the test."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp_path = tmp_path
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path, settings):
    """Production's cache layout (registry_site.settings with REDIS_URL) on its own server."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: the Redis outage tests need a real server")
    server = RedisServer(tmp_path)
    server.start()
    common = {"LOCATION": server.url, "KEY_PREFIX": "outage-test",
              "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
    settings.CACHES = {
        "default": {"BACKEND": "registry_site.cache.FailOpenRedisCache", **common},
        "throttles": {"BACKEND": "django.core.cache.backends.redis.RedisCache", **common},
    }
    yield server
    if server.process.poll() is None:
        server.stop()


def sign_in(client: Client, path: str = "/accounts/login/"):
    return client.post(path, {"username": "user", "password": PASSWORD})


def get_token(api: APIClient):
    return api.post("/api/v1/auth/tokens/", {"username": "user", "password": PASSWORD},
                    format="json")


@pytest.mark.django_db
def test_redis_stopped_mid_run_fails_open_for_reads_and_closed_for_passwords(
        redis_server, user, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "5/min")
    api = APIClient(REMOTE_ADDR="198.51.100.200", raise_request_exception=False)
    page = Client(REMOTE_ADDR="198.51.100.201", raise_request_exception=False)
    signed_in = Client(REMOTE_ADDR="198.51.100.202", raise_request_exception=False)
    signed_in.force_login(user)

    # Redis up: everything works and the parameter is cached in Redis.
    assert get_token(api).status_code == 201
    assert get_parameter("quorum_bps") == 400
    from django.core.cache import cache

    assert cache.get(cache_key("quorum_bps")) == 400

    redis_server.stop()

    # Fail open: reads and pages keep serving; the cache misses and the database answers.
    assert api.get("/api/v1/parameters/").status_code == 200
    assert api.get("/api/v1/stats/").status_code == 200
    assert page.get("/stats/").status_code == 200
    assert page.get("/").status_code == 200
    assert signed_in.get("/account/").status_code == 200  # sessions live in the database
    assert get_parameter("quorum_bps") == 400
    owner = APIClient(REMOTE_ADDR="198.51.100.203", raise_request_exception=False)
    owner.force_authenticate(user)
    registered = owner.post("/api/v1/models/", {
        "name": "during-outage", "version": "1.0.0", "hash": "a" * 64, "size_bytes": 10,
        "parameter_count": 1}, format="json")
    assert registered.status_code == 201, registered.content
    # The rate limits fail open to a count in this process, so a limit still holds.
    codes = [api.get("/api/v1/parameters/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]

    # Fail closed: password checks (their limit is the defence against guessing) ...
    tokens_before = ApiToken.objects.count()
    refused = get_token(APIClient(raise_request_exception=False))
    assert refused.status_code == 503
    assert refused.json() == {
        "detail": "Sign-in is unavailable while the rate-limit store is down. Try again shortly.",
        "code": "cache_unavailable"}
    assert ApiToken.objects.count() == tokens_before
    for path in ("/accounts/login/", "/admin/login/"):
        login = sign_in(Client(raise_request_exception=False), path)
        assert login.status_code == 503
        assert b"Service unavailable" in login.content
    # ... and parameter changes (Redis could come back holding the old value).
    with pytest.raises(CacheUnavailable):
        parameter_set(name="quorum_bps", value=900, reason="during the outage")
    assert not ParameterChange.objects.exists()
    # The health check says what is wrong.
    health = Client(raise_request_exception=False).get("/healthz")
    assert health.status_code == 503
    assert health.json()["cache"] == "error"

    # Redis back on the same port: password checks work again.
    redis_server.start()
    assert get_token(APIClient(raise_request_exception=False)).status_code == 201
    assert Client().get("/healthz").status_code == 200


# --- the parameter cache is shared between processes -----------------------------------------

def test_after_a_failure_the_fail_open_cache_skips_redis_for_a_moment(caplog):
    """A hung Redis costs the whole timeout per call: after one failure the process serves
    without Redis for SKIP_AFTER_FAILURE_SECONDS instead of waiting on every call."""
    from registry_site.cache import SKIP_AFTER_FAILURE_SECONDS, FailOpenRedisCache

    closed = f"redis://127.0.0.1:{free_port()}/0"
    fail_open = FailOpenRedisCache(closed, {"OPTIONS": {"socket_connect_timeout": 0.2}})
    assert fail_open.get("k", "missing") == "missing"  # refused: the fallback
    assert "cache get failed" in caplog.text
    assert fail_open.down_until > time.monotonic() + SKIP_AFTER_FAILURE_SECONDS - 1

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError("Redis was called while it is known to be down")

    fail_open._cache = Untouchable()
    assert fail_open.get("k", "missing") == "missing"
    assert fail_open.add("k", 1) is False
    fail_open.down_until = 0.0  # the moment is over: Redis is tried again
    with pytest.raises(AssertionError):
        fail_open.get("k")


PUBLISH = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")
import django
django.setup()
from django.core.cache import cache
from registry_site.parameters import CACHE_TIMEOUT, cache_key
# What parameter_set publishes after its commit (manage.py set_parameter in another process).
cache.set(cache_key(sys.argv[1]), int(sys.argv[2]), CACHE_TIMEOUT)
"""


@pytest.mark.django_db
def test_a_parameter_published_by_another_process_is_read_at_once(django_assert_num_queries):
    """`manage.py set_parameter` in one process reaches a running `make run` server at once:
    without REDIS_URL the parameter cache is a file cache every process shares (it was a
    per-process memory cache, which kept the old value for five minutes)."""
    assert get_parameter("voting_period_seconds") == 604_800  # cached by this "server"
    result = subprocess.run([sys.executable, "-c", PUBLISH, "voting_period_seconds", "60"],
                            cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    with django_assert_num_queries(0):
        assert get_parameter("voting_period_seconds") == 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_set_parameter_command_reaches_this_process_at_once():
    db = connection.settings_dict
    env = {**os.environ,
           "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:"
                           f"{db['PORT'] or 5432}/{db['NAME']}"}
    assert get_parameter("quorum_bps") == 400
    result = subprocess.run(
        [sys.executable, "manage.py", "set_parameter", "quorum_bps", "900", "--reason", "test"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert get_parameter("quorum_bps") == 900
