"""The IP allow-list guards /api/ and /admin/; the client address comes from the connection,
or from X-Forwarded-For only through TRUSTED_PROXY_COUNT proxies."""

import os

import pytest
import time_machine
from django.test import Client

from registry_site.middleware import IPAllowListMiddleware
from registry_site.models import AuditEvent

pytestmark = pytest.mark.django_db

API = "/api/v1/parameters/"


def get(path, ip, forwarded=None):
    # A new client per request: the middleware reads IP_ALLOWLIST when the stack is built.
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return Client(REMOTE_ADDR=ip).get(path, **extra)


def test_off_by_default_everyone_reaches_the_api(settings):
    assert settings.IP_ALLOWLIST == []
    assert get(API, "203.0.113.9").status_code == 200


def test_on_refuses_addresses_outside_with_403_and_an_audit_event(settings):
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    response = get(API, "203.0.113.9")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Your address is not on this registry's allow-list.", "code": "ip_not_allowed"}
    event = AuditEvent.objects.get(action="security.ip_refused")
    assert event.ip == "203.0.113.9"
    assert event.details == {"path": API, "method": "GET"}


def test_refusal_under_admin_is_an_html_page(settings):
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    response = get("/admin/login/", "203.0.113.9")
    assert response.status_code == 403
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b"<h1>Forbidden</h1>" in response.content
    assert b"not on this registry&#x27;s allow-list" in response.content
    assert b"ip_not_allowed" not in response.content


def test_admin_is_guarded_and_pages_are_not(settings):
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    assert get("/admin/login/", "203.0.113.9").status_code == 403
    assert get("/healthz", "203.0.113.9").status_code == 200
    assert get("/admin/login/", "10.1.2.3").status_code == 200


@pytest.mark.parametrize(
    "ip, allowed",
    [("10.20.30.40", True), ("192.168.1.200", True), ("192.168.2.1", False),
     ("2001:db8::1", True), ("2001:db8:ffff::1", True), ("2001:db9::1", False),
     ("::1", False)],
)
def test_cidr_ranges_v4_and_v6(settings, ip, allowed):
    settings.IP_ALLOWLIST = ["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32"]
    assert (get(API, ip).status_code == 200) is allowed


def test_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    settings.TRUSTED_PROXY_COUNT = 0
    assert get(API, "203.0.113.9", forwarded="10.0.0.1").status_code == 403


def test_one_trusted_proxy_takes_the_address_it_appended(settings):
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    settings.TRUSTED_PROXY_COUNT = 1
    # The proxy (172.16.0.1) appended the real client; whatever the client sent before is
    # left of it and ignored.
    assert get(API, "172.16.0.1", forwarded="10.0.0.1").status_code == 200
    assert get(API, "172.16.0.1", forwarded="10.0.0.1, 203.0.113.9").status_code == 403
    assert get(API, "172.16.0.1", forwarded="203.0.113.9, 10.0.0.7").status_code == 200


def test_two_trusted_proxies_ignore_spoofed_left_most_entries(settings):
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    settings.TRUSTED_PROXY_COUNT = 2
    # client -> proxy1 (appends client) -> proxy2 (appends proxy1) -> app
    assert get(API, "172.16.0.2", forwarded="10.0.0.5, 172.16.0.1").status_code == 200
    spoofed = "10.9.9.9, 203.0.113.9, 172.16.0.1"
    response = get(API, "172.16.0.2", forwarded=spoofed)
    assert response.status_code == 403
    assert AuditEvent.objects.get(action="security.ip_refused").ip == "203.0.113.9"


def test_too_few_forwarded_entries_fall_back_to_the_connection(settings):
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    settings.TRUSTED_PROXY_COUNT = 2
    assert get(API, "203.0.113.9", forwarded="10.0.0.1").status_code == 403
    assert get(API, "10.0.0.2", forwarded="garbage").status_code == 200


def test_unparseable_forwarded_address_is_refused(settings):
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    settings.TRUSTED_PROXY_COUNT = 1
    assert get(API, "10.0.0.2", forwarded="not-an-ip").status_code == 403


def test_refusals_are_audited_once_per_address_per_window(settings):
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    client = Client(REMOTE_ADDR="203.0.113.9")
    assert {client.get(API).status_code for _ in range(50)} == {403}
    assert AuditEvent.objects.filter(action="security.ip_refused").count() == 1
    # Another address has its own window.
    assert get(API, "203.0.113.10").status_code == 403
    assert list(AuditEvent.objects.filter(action="security.ip_refused")
                .order_by("id").values_list("ip", flat=True)) == ["203.0.113.9", "203.0.113.10"]


@pytest.mark.skipif("redis" in os.environ.get("REDIS_URL", ""),
                    reason="moves the clock of the local-memory cache; Redis keeps its own")
def test_the_next_window_audits_the_first_refusal_again(settings):
    settings.IP_ALLOWLIST = ["10.0.0.0/8"]
    window = IPAllowListMiddleware.audit_window_seconds
    client = Client(REMOTE_ADDR="203.0.113.9")
    with time_machine.travel("2026-05-01T12:00:00Z", tick=False) as clock:
        client.get(API)
        clock.shift(window - 1)
        client.get(API)
        assert AuditEvent.objects.filter(ip="203.0.113.9").count() == 1
        clock.shift(2)
        assert client.get(API).status_code == 403
        client.get(API)
    assert AuditEvent.objects.filter(ip="203.0.113.9").count() == 2
