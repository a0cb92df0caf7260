"""Shared fixtures: users, roles, API clients with tokens, and the PostgreSQL-only marker."""

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.db import connection
from rest_framework.test import APIClient

from fees_app.services import account_credit
from registry_site.services import token_create

PASSWORD = "a-Str0ng-test-pass"


def pytest_collection_modifyitems(config, items):
    if not django_settings.CELERY_BROKER_URL:
        no_broker = pytest.mark.skip(
            reason="needs a broker and a real worker: set CELERY_BROKER_URL (the third pass of "
                   ".ci/run, on RabbitMQ)"
        )
        for item in items:
            if "celery_worker" in item.keywords:
                item.add_marker(no_broker)
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL for real row locks: set DATABASE_URL (the second pass of .ci/run)"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clean_cache():
    """Parameters and rate limits live in the caches; every test starts from empty ones."""
    for alias in ("default", "throttles"):
        caches[alias].clear()
    yield
    for alias in ("default", "throttles"):
        caches[alias].clear()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Stored artifacts go to a throw-away directory, never the checkout's media/."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """PBKDF2 is slow on purpose (~0.3 s a user); tests need the password check, not the cost."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(db):
    counter = {"n": 0}

    def make(username=None, *, balance=0, moderator=False, **fields):
        counter["n"] += 1
        username = username or f"user{counter['n']}"
        user = get_user_model().objects.create_user(username=username, password=PASSWORD, **fields)
        if moderator:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            user.groups.add(Group.objects.get(name="moderators"))
        if balance:
            account_credit(user=user, amount=balance, reason="test funds")
        return user

    return make


@pytest.fixture
def user(make_user):
    return make_user("user", balance=1_000_000)


@pytest.fixture
def other_user(make_user):
    return make_user("other", balance=1_000_000)


@pytest.fixture
def moderator(make_user):
    return make_user("mod", balance=1_000_000, moderator=True)


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def client_for():
    """An API client authenticated with a fresh bearer token for ``user`` and ``scopes``."""

    def make(user, scopes=None):
        _, secret = token_create(user=user, scopes=scopes)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        api.user = user
        return api

    return make


@pytest.fixture
def user_client(client_for, user):
    return client_for(user)


@pytest.fixture
def moderator_client(client_for, moderator):
    return client_for(moderator)
