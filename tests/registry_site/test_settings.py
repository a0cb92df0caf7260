"""A bad environment value stops start-up with a message naming the variable."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

SETUP = "import django; django.setup(); print('started')"
CONFIGURED = ("DJANGO_DEBUG", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL",
              "REDIS_URL", "TOKEN_TTL_SECONDS", "TOKEN_MAX_TTL_SECONDS", "THROTTLE_ANON",
              "IP_ALLOWLIST", "TRUSTED_PROXY_COUNT", "REDIS_TIMEOUT_MS", "CACHE_DIR",
              "DATABASE_HEALTH_CHECK_IDLE_MS", "CORS_ALLOWED_ORIGINS")


def start(code=SETUP, **env):
    base = {k: v for k, v in os.environ.items() if k not in CONFIGURED}
    base["DJANGO_SETTINGS_MODULE"] = "registry_site.settings"
    return subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR,
                          env={**base, **env}, capture_output=True, text=True, timeout=60)


def test_defaults_start():
    result = start()
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_production_settings_start_with_a_secret_key_and_redis():
    result = start(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 60,
                   DJANGO_ALLOWED_HOSTS="registry.example", REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode == 0, result.stderr


def test_production_refuses_to_start_without_redis():
    """A per-process cache in production let every worker count its own rate limits and an
    emergency pause take minutes to reach every worker."""
    result = start(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 60,
                   DJANGO_ALLOWED_HOSTS="registry.example")
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: REDIS_URL is "
                                "required when DJANGO_DEBUG is off"), result.stderr[-2000:]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DJANGO_DEBUG": "0"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 60}, "DJANGO_ALLOWED_HOSTS"),
        ({"TOKEN_TTL_SECONDS": "abc"}, "TOKEN_TTL_SECONDS"),
        ({"TOKEN_TTL_SECONDS": "0"}, "TOKEN_TTL_SECONDS"),
        ({"TOKEN_MAX_TTL_SECONDS": "-5"}, "TOKEN_MAX_TTL_SECONDS"),
        ({"TOKEN_TTL_SECONDS": "100", "TOKEN_MAX_TTL_SECONDS": "50"}, "TOKEN_TTL_SECONDS"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://x", "REDIS_TIMEOUT_MS": "soon"}, "REDIS_TIMEOUT_MS"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
          "DATABASE_HEALTH_CHECK_IDLE_MS": "soon"}, "DATABASE_HEALTH_CHECK_IDLE_MS"),
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
          "DATABASE_HEALTH_CHECK_IDLE_MS": "-1"}, "DATABASE_HEALTH_CHECK_IDLE_MS"),
        ({"THROTTLE_ANON": "lots"}, "THROTTLE_ANON"),
        ({"THROTTLE_ANON": "100/fortnight"}, "THROTTLE_ANON"),
        ({"IP_ALLOWLIST": "not-a-cidr"}, "IP_ALLOWLIST"),
        ({"IP_ALLOWLIST": "10.0.0.0/8, 300.1.2.3/32"}, "IP_ALLOWLIST"),
        ({"TRUSTED_PROXY_COUNT": "many"}, "TRUSTED_PROXY_COUNT"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(env, variable):
    result = start(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]
