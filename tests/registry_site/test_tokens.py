"""Personal access tokens through the API and the account page, and browser sessions."""

import hashlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from registry_site.models import ApiToken, AuditEvent
from registry_site.services import token_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/auth/tokens/"
USER_SCOPES = ["propose", "read", "register", "usage", "vote"]


def create(api, username="user", password=PASSWORD, **extra):
    return api.post(TOKENS, {"username": username, "password": password, **extra},
                    format="json")


def bearer(api, secret):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


def test_create_answers_201_with_the_secret_once(anon_client, user):
    with time_machine.travel("2031-05-01 12:00Z", tick=False):
        response = create(anon_client)
    assert response.status_code == 201, response.content
    data = response.json()
    assert {"id", "token", "scopes", "expires_at"} <= set(data)
    assert data["scopes"] == USER_SCOPES
    assert parse_datetime(data["expires_at"]) == parse_datetime("2031-05-01 12:00Z") + timedelta(
        seconds=settings.TOKEN_TTL_SECONDS)
    token = ApiToken.objects.get(pk=data["id"])
    assert token.user == user
    event = AuditEvent.objects.get(action="token.created")
    assert (event.actor, event.target_id) == (user, str(token.pk))
    assert data["token"] not in str(event.details)


def test_the_secret_is_stored_only_as_a_hash(anon_client, user):
    secret = create(anon_client, name="ci").json()["token"]
    token = ApiToken.objects.get(user=user)
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix)
    assert len(token.prefix) < len(secret) // 2
    # No column of any row in the token or audit tables holds the secret.
    with connection.cursor() as cursor:
        for table in (ApiToken._meta.db_table, AuditEvent._meta.db_table):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            for row in cursor.fetchall():
                assert all(secret not in str(value) for value in row)


def test_moderators_get_the_moderate_scope_by_default(anon_client, moderator):
    data = create(anon_client, username="mod").json()
    assert data["scopes"] == sorted([*USER_SCOPES, "moderate"])


def test_requested_scopes_are_kept(anon_client, user):
    data = create(anon_client, scopes=["read", "vote", "read"]).json()
    assert data["scopes"] == ["read", "vote"]


def test_a_user_cannot_ask_for_moderate(anon_client, user):
    response = create(anon_client, scopes=["read", "moderate"])
    assert response.status_code == 400
    assert "scopes" in response.json()["fields"]
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"scopes": ["root"]}, "scopes"), ({"scopes": "read"}, "scopes"), ({"scopes": []}, "scopes"),
     ({"expires_in": 0}, "expires_in"), ({"expires_in": "soon"}, "expires_in")],
)
def test_create_field_errors(anon_client, user, extra, field):
    response = create(anon_client, **extra)
    assert response.status_code == 400
    data = response.json()
    assert (data["detail"], data["code"]) == ("Invalid input.", "invalid")
    assert field in data["fields"]


def test_missing_credentials_are_field_errors(anon_client):
    response = anon_client.post(TOKENS, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"username", "password"}


def test_expires_in_is_capped(anon_client, user):
    with time_machine.travel("2031-05-01 12:00Z", tick=False):
        data = create(anon_client, expires_in=10**12).json()
        short = create(anon_client, expires_in=60).json()
    start = parse_datetime("2031-05-01 12:00Z")
    assert parse_datetime(data["expires_at"]) == start + timedelta(
        seconds=settings.TOKEN_MAX_TTL_SECONDS)
    assert parse_datetime(short["expires_at"]) == start + timedelta(seconds=60)


@pytest.mark.parametrize(("username", "password"),
                         [("user", "wrong-password"), ("ghost", PASSWORD)])
def test_wrong_password_is_401_and_audited(anon_client, user, username, password):
    response = create(anon_client, username=username, password=password)
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}
    assert not ApiToken.objects.exists()
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.details == {"username": username}
    assert event.actor is None
    assert event.ip == "127.0.0.1"


def test_inactive_user_gets_no_token(anon_client, user):
    user.is_active = False
    user.save()
    assert create(anon_client).status_code == 401


def test_list_shows_own_tokens_without_secrets(user, other_user, client_for):
    api = client_for(user)
    token_create(user=user, scopes=["read"], name="laptop")
    token_create(user=other_user)
    response = api.get(TOKENS)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 2
    assert {r["name"] for r in rows} == {"", "laptop"}
    for row in rows:
        assert "token" not in row and "digest" not in row
        assert row["is_active"] is True


def test_token_list_refused_to_anonymous(anon_client):
    assert anon_client.get(TOKENS).status_code == 401


def test_revoke_one_then_it_is_refused(user, anon_client, client_for):
    token, secret = token_create(user=user)
    api = bearer(anon_client, secret)
    assert api.get("/api/v1/account/").status_code == 200
    other_api = client_for(user)
    assert other_api.delete(f"{TOKENS}{token.pk}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    response = api.get("/api/v1/account/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert other_api.get("/api/v1/account/").status_code == 200
    assert AuditEvent.objects.filter(action="token.revoked", target_id=str(token.pk)).exists()


def test_revoking_twice_is_harmless(user, client_for):
    token, _ = token_create(user=user)
    api = client_for(user)
    assert api.delete(f"{TOKENS}{token.pk}/").status_code == 204
    assert api.delete(f"{TOKENS}{token.pk}/").status_code == 204
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_revoking_someone_elses_token_is_404(other_user, user_client):
    token, _ = token_create(user=other_user)
    response = user_client.delete(f"{TOKENS}{token.pk}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize("token_id", ["abc", "1.5", "-1", "99999999999999999999999", "0"])
def test_revoking_a_token_id_that_cannot_exist_is_404(user_client, token_id):
    response = user_client.delete(f"{TOKENS}{token_id}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_revoke_all(user, other_user, anon_client, client_for):
    _, first = token_create(user=user)
    _, second = token_create(user=user)
    _, others = token_create(user=other_user)
    api = client_for(user)
    response = api.post(f"{TOKENS}revoke_all/")
    assert response.status_code == 200
    assert response.json() == {"revoked": 3}  # including the one making the request
    for secret in (first, second):
        assert bearer(anon_client, secret).get("/api/v1/account/").status_code == 401
    assert api.get("/api/v1/account/").status_code == 401
    assert bearer(anon_client, others).get("/api/v1/account/").status_code == 200
    assert AuditEvent.objects.get(action="token.revoked_all").details == {"count": 3}


def test_expired_token_is_refused(user, anon_client):
    token, secret = token_create(user=user, expires_in=600)
    api = bearer(anon_client, secret)
    with time_machine.travel(token.expires_at - timedelta(seconds=1), tick=False):
        assert api.get("/api/v1/account/").status_code == 200
    with time_machine.travel(token.expires_at, tick=False):
        response = api.get("/api/v1/account/")
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]
    with time_machine.travel(token.expires_at + timedelta(days=1), tick=False):
        assert api.get("/api/v1/fees/schedules/").status_code == 401


def test_token_of_a_deactivated_user_is_refused(user, user_client):
    user.is_active = False
    user.save()
    assert user_client.get("/api/v1/account/").status_code == 401


def test_last_used_is_recorded(user, client_for):
    api = client_for(user)
    api.get("/api/v1/account/")
    token = ApiToken.objects.get(user=user)
    assert token.last_used_at is not None


def test_a_token_without_the_needed_scope_is_403(user, client_for):
    register_only = client_for(user, scopes=["register"])
    response = register_only.post("/api/v1/fees/calculate/",
                                  {"fee_type": "execution", "units": 1}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "read" in response.json()["detail"]
    assert register_only.get("/api/v1/account/").status_code == 403
    read_only = client_for(user, scopes=["read"])
    assert read_only.post("/api/v1/fees/calculate/", {"fee_type": "execution", "units": 1},
                          format="json").status_code == 200


def test_moderator_token_without_moderate_scope_cannot_read_the_audit_trail(moderator,
                                                                            client_for):
    assert client_for(moderator, scopes=["read"]).get("/api/v1/audit-events/").status_code == 403
    assert client_for(moderator, scopes=["moderate"]).get(
        "/api/v1/audit-events/").status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer two parts", "Bearer air_not-a-real-token", "Bearer \xff\xfe",
     "bearer"],
)
def test_malformed_or_unknown_bearer_header_is_401(anon_client, user, header):
    anon_client.credentials(HTTP_AUTHORIZATION=header)
    response = anon_client.get("/api/v1/fees/schedules/")
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}
    assert response["WWW-Authenticate"] == "Bearer"


def test_anonymous_is_401_with_a_bearer_challenge(anon_client):
    response = anon_client.get("/api/v1/account/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


# The browser: sessions and the account page


def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_login_with_the_session_then_logout(client, user):
    response = client.post("/accounts/login/", {"username": "user", "password": PASSWORD})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="auth.login", actor=user).exists()
    assert client.get("/api/v1/account/").json()["username"] == "user"
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/api/v1/account/").status_code in (401, 403)


def test_failed_browser_login_is_audited(client, user):
    response = client.post("/accounts/login/", {"username": "user", "password": "nope"})
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action="auth.login_failed").exists()


def test_session_api_writes_need_csrf(user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post("/api/v1/fees/calculate/", {"fee_type": "execution", "units": 1},
                            content_type="application/json")
    assert response.status_code == 403


def test_account_page_needs_login(client):
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_account_page_shows_balance_and_creates_a_token_shown_once(client, user):
    client.force_login(user)
    page = client.get("/account/")
    assert page.status_code == 200
    assert b"1,000,000" in page.content
    response = client.post("/account/", {"name": "laptop", "scopes": ["read", "usage"],
                                         "expires_in": "600"})
    assert response.status_code == 302
    token = ApiToken.objects.get(user=user)
    assert (token.name, token.scopes) == ("laptop", ["read", "usage"])
    shown = client.get("/account/").content.decode()
    secrets = {s for s in re.findall(r"air_[\w-]+", shown) if len(s) > 30}
    assert len(secrets) == 1
    secret = secrets.pop()
    assert hashlib.sha256(secret.encode()).hexdigest() == token.digest
    assert secret not in client.get("/account/").content.decode()


def test_account_page_refuses_the_moderate_scope_to_a_user(client, user):
    client.force_login(user)
    response = client.post("/account/", {"scopes": ["moderate"], "expires_in": "600"},
                           follow=True)
    assert not ApiToken.objects.exists()
    assert response.status_code == 200


def test_account_page_revokes_a_token(client, user, other_user):
    token, _ = token_create(user=user)
    others, _ = token_create(user=other_user)
    client.force_login(user)
    response = client.post(f"/account/tokens/{token.pk}/revoke/", follow=True)
    assert response.status_code == 200
    assert b"Token revoked." in response.content
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.post(f"/account/tokens/{others.pk}/revoke/")
    others.refresh_from_db()
    assert others.revoked_at is None
    assert client.get(f"/account/tokens/{token.pk}/revoke/").status_code == 405


def test_account_page_revokes_all(client, user):
    token_create(user=user)
    token_create(user=user)
    client.force_login(user)
    client.post("/account/tokens/revoke-all/")
    assert not ApiToken.objects.active().filter(user=user).exists()
    assert ApiToken.objects.filter(user=user, revoked_at__lte=timezone.now()).count() == 2


def test_token_list_query_count_is_fixed(user, client_for, django_assert_max_num_queries):
    api = client_for(user)
    api.get(TOKENS)  # warm: last_used_at is written once
    for _ in range(5):
        token_create(user=user)
    with django_assert_max_num_queries(2):
        assert len(api.get(TOKENS).json()["results"]) == 6


def test_a_read_only_token_cannot_revoke_another_token(user, client_for):
    other, _ = token_create(user=user)
    reader = client_for(user, scopes=["read"])
    response = reader.delete(f"{TOKENS}{other.pk}/")
    assert response.status_code == 403
    assert response.json() == {"detail": "A read-only token may revoke only itself.",
                               "code": "permission_denied"}
    other.refresh_from_db()
    assert other.revoked_at is None
    assert not AuditEvent.objects.filter(action="token.revoked").exists()


def test_a_read_only_token_cannot_revoke_all(user, client_for):
    token_create(user=user)
    reader = client_for(user, scopes=["read"])
    response = reader.post(f"{TOKENS}revoke_all/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() == 2
    assert not AuditEvent.objects.filter(action="token.revoked_all").exists()


def test_a_read_only_token_can_revoke_itself(user, anon_client):
    token, secret = token_create(user=user, scopes=["read"])
    api = bearer(anon_client, secret)
    assert api.delete(f"{TOKENS}{token.pk}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api.get("/api/v1/account/").status_code == 401


@pytest.mark.parametrize("spelling", ["{pk}", "0{pk}", "00{pk}"])
def test_a_read_only_token_can_revoke_itself_by_any_spelling_of_its_id(user, anon_client,
                                                                       spelling):
    token, secret = token_create(user=user, scopes=["read"])
    response = bearer(anon_client, secret).delete(f"{TOKENS}{spelling.format(pk=token.pk)}/")
    assert response.status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.parametrize("token_id", ["abc", "1.5", "-1", "9" * 30, "٣"])
def test_a_read_only_token_naming_no_token_gets_404(user, client_for, token_id):
    reader = client_for(user, scopes=["read"])
    response = reader.delete(f"{TOKENS}{token_id}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not AuditEvent.objects.filter(action="token.revoked").exists()


def test_a_token_with_more_than_read_and_the_session_revoke_others(user, client_for, client):
    first, _ = token_create(user=user)
    second, _ = token_create(user=user)
    assert client_for(user, scopes=["read", "vote"]).delete(
        f"{TOKENS}{first.pk}/").status_code == 204
    client.force_login(user)
    assert client.delete(f"{TOKENS}{second.pk}/").status_code == 204
    assert ApiToken.objects.filter(pk__in=[first.pk, second.pk],
                                   revoked_at__isnull=False).count() == 2


@pytest.mark.parametrize("is_moderator", [False, True])
def test_the_one_statement_token_lookup_loads_what_the_orm_loads(
        make_user, is_moderator, django_assert_num_queries):
    from registry_site.authentication import token_with_user
    from registry_site.services import token_digest

    owner = make_user("looked-up", moderator=is_moderator)
    _, secret = token_create(user=owner, scopes=["read", "register"])
    expected = ApiToken.objects.select_related("user").get(digest=token_digest(secret))
    with django_assert_num_queries(1):
        token = token_with_user(token_digest(secret))
    for field in ApiToken._meta.concrete_fields:
        assert getattr(token, field.attname) == getattr(expected, field.attname), field.name
    for field in type(owner)._meta.concrete_fields:
        assert getattr(token.user, field.attname) == getattr(expected.user, field.attname)
    assert token.scopes == ["read", "register"]
    assert token.created_at.utcoffset() == timedelta(0)  # aware, as the ORM loads it
    assert token.user._is_moderator is is_moderator
    assert token_with_user(token_digest("not-a-token")) is None
