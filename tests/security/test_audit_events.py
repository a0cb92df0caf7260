"""Security events land in the audit trail: logins, failed logins, tokens created and revoked,
permission denied. (Throttling, allow-list and artifact refusals are in their own tests.)"""

import pytest
from django.test import Client

from registry_site.audit import audit_seal, audit_verify
from registry_site.models import ApiToken, AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def test_browser_login_and_failed_login(user):
    browser = Client(REMOTE_ADDR="198.51.100.30")
    browser.post("/accounts/login/", {"username": "user", "password": "wrong"})
    browser.post("/accounts/login/", {"username": "user", "password": PASSWORD})

    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.details == {"username": "user"}
    assert failed.ip == "198.51.100.30"
    assert failed.actor_id is None
    assert AuditEvent.objects.get(action="auth.login").actor_id == user.pk


def test_token_created_revoked_and_failed_token_login(anon_client, user):
    response = anon_client.post("/api/v1/auth/tokens/",
                                {"username": "user", "password": PASSWORD, "scopes": ["read"]})
    assert response.status_code == 201
    anon_client.post("/api/v1/auth/tokens/", {"username": "user", "password": "nope"})
    token = ApiToken.objects.get()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert api.delete(f"/api/v1/auth/tokens/{token.pk}/").status_code == 204

    assert "token.created" in actions()
    assert "auth.login_failed" in actions()
    revoked = AuditEvent.objects.get(action="token.revoked")
    assert revoked.actor_id == user.pk
    assert revoked.target_id == str(token.pk)


def test_permission_denied_is_audited(client_for, user):
    response = client_for(user).get("/api/v1/audit-events/")
    assert response.status_code == 403
    event = AuditEvent.objects.get(action="security.permission_denied")
    assert event.actor_id == user.pk
    assert event.details["path"] == "/api/v1/audit-events/"
    assert event.details["method"] == "GET"
    assert event.details["view"] == "AuditEventViewSet"


def test_missing_scope_is_audited_as_permission_denied(client_for, user):
    token_client = client_for(user, scopes=["vote"])
    assert token_client.get("/api/v1/parameters/").status_code == 403
    event = AuditEvent.objects.get(action="security.permission_denied")
    assert "read" in event.details["detail"]


def test_unauthenticated_is_401_and_not_a_permission_event(anon_client):
    assert anon_client.get("/api/v1/audit-events/").status_code == 401
    assert not AuditEvent.objects.filter(action="security.permission_denied").exists()


def test_security_events_keep_the_chain_verifiable(client_for, user, settings):
    client_for(user).get("/api/v1/audit-events/")
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    Client(REMOTE_ADDR="203.0.113.1").get("/api/v1/parameters/")
    audit_seal()
    checked, problem = audit_verify()
    assert problem is None
    assert checked == AuditEvent.objects.count()
