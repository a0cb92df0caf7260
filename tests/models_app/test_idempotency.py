"""Idempotency-Key on charged and creating POSTs: one run, the first answer replayed."""

import datetime
import threading

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from fees_app.models import LedgerEntry
from fees_app.services import account_credit, account_for
from models_app.models import Registration, UsageDelta
from registry_site.idempotency import idempotency_keys_purge
from registry_site.models import ApiToken, IdempotencyKey
from registry_site.services import parameter_set
from tests.concurrency import run_at_once
from tests.conftest import PASSWORD
from tests.models_app.conftest import HASH

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/models/bert-base/usage/"


def registration_body(**extra):
    return {"name": "new-model", "version": "1.0.0", "hash": HASH, "size_bytes": 1024,
            "parameter_count": 1000, **extra}


def post(api, url, body, key, **headers):
    return api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **headers)


def debits(user):
    return LedgerEntry.objects.filter(account__user=user, kind=LedgerEntry.Kind.DEBIT).count()


@pytest.fixture
def caller(make_user):
    return make_user("caller", balance=1_000_000)


def test_a_retried_usage_is_charged_once_and_answers_as_the_first(client_for, caller, approved):
    api = client_for(caller)
    first = post(api, USAGE, {"success": True, "duration_us": 40}, "usage-0001")
    assert first.status_code == 201, first.content
    assert "Idempotent-Replayed" not in first
    balance = account_for(caller).balance

    again = post(api, USAGE, {"duration_us": 40, "success": True}, "usage-0001")
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again["Content-Type"] == "application/json"
    assert account_for(caller).balance == balance
    assert debits(caller) == 1
    approved.usage.refresh_from_db()
    pending = UsageDelta.objects.filter(registration=approved).count()
    assert approved.usage.total_executions + pending == 1


def test_another_body_or_endpoint_with_the_key_is_422_and_charges_nothing(
        client_for, caller, approved):
    api = client_for(caller)
    assert post(api, USAGE, {"success": True, "duration_us": 40}, "k-1").status_code == 201
    balance = account_for(caller).balance
    response = post(api, USAGE, {"success": False, "duration_us": 40}, "k-1")
    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")
    response = post(api, "/api/v1/models/", registration_body(), "k-1")
    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")
    assert set(response.json()) == {"detail", "code"}
    assert account_for(caller).balance == balance
    assert not Registration.objects.filter(name="new-model").exists()


def test_keys_are_per_user(client_for, caller, other_user, approved):
    body = {"success": True, "duration_us": 40}
    assert post(client_for(caller), USAGE, body, "shared").status_code == 201
    response = post(client_for(other_user), USAGE, body, "shared")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert (debits(caller), debits(other_user)) == (1, 1)


@pytest.mark.parametrize("key", ["", "a" * 256, "with space", "caf\u00e9"])
def test_a_malformed_key_is_400_and_runs_nothing(client_for, caller, approved, key):
    response = client_for(caller).post(USAGE, {"success": True, "duration_us": 40},
                                       format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_idempotency_key")
    assert debits(caller) == 0
    assert not IdempotencyKey.objects.exists()


def test_without_the_header_nothing_is_stored(client_for, caller, approved):
    api = client_for(caller)
    for _ in range(2):
        assert api.post(USAGE, {"success": True, "duration_us": 40}).status_code == 201
    assert debits(caller) == 2
    assert not IdempotencyKey.objects.exists()


def test_a_refusal_is_the_first_answer_too(client_for, make_user, approved):
    poor = make_user("poor", balance=0)
    api = client_for(poor)
    body = {"success": True, "duration_us": 40}
    first = post(api, USAGE, body, "pay-1")
    assert (first.status_code, first.json()["code"]) == (402, "insufficient_funds")
    account_credit(user=poor, amount=1_000, reason="top-up")
    again = post(api, USAGE, body, "pay-1")
    assert (again.status_code, again.content) == (402, first.content)
    assert again["Idempotent-Replayed"] == "true"
    assert post(api, USAGE, body, "pay-2").status_code == 201
    assert debits(poor) == 1


def test_an_unavailable_answer_is_not_kept_and_a_retry_runs(client_for, caller, moderator):
    api = client_for(caller)
    parameter_set(name="registrations_paused", value=1, actor=moderator, reason="incident")
    response = post(api, "/api/v1/models/", registration_body(), "reg-1")
    assert (response.status_code, response.json()["code"]) == (503, "registrations_paused")
    assert not IdempotencyKey.objects.exists()
    parameter_set(name="registrations_paused", value=0, actor=moderator, reason="over")
    response = post(api, "/api/v1/models/", registration_body(), "reg-1")
    assert response.status_code == 201, response.content
    assert "Idempotent-Replayed" not in response
    replay = post(api, "/api/v1/models/", registration_body(), "reg-1")
    assert (replay.status_code, replay.content) == (201, response.content)
    assert Registration.objects.filter(name="new-model").count() == 1
    assert LedgerEntry.objects.filter(account__user=caller, fee_type="registration").count() == 1


def test_a_token_request_replays_its_token_and_stores_no_secret(anon_client, caller):
    body = {"username": "caller", "password": PASSWORD, "name": "ci"}
    first = post(anon_client, "/api/v1/auth/tokens/", body, "token-1")
    assert first.status_code == 201, first.content
    again = post(anon_client, "/api/v1/auth/tokens/", body, "token-1")
    assert (again.status_code, again.content) == (201, first.content)
    assert again["Idempotent-Replayed"] == "true"
    assert ApiToken.objects.filter(user=caller).count() == 1
    stored = IdempotencyKey.objects.get()
    secret = first.json()["token"]
    assert secret.encode() not in bytes(stored.response)
    assert PASSWORD not in stored.fingerprint and stored.key_digest != "token-1"


def test_wrong_credentials_with_a_key_are_401_and_claim_nothing(anon_client, caller):
    body = {"username": "caller", "password": "wrong", "name": "ci"}
    response = post(anon_client, "/api/v1/auth/tokens/", body, "token-1")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")
    assert not IdempotencyKey.objects.exists()


def test_a_key_runs_again_after_it_expires_and_the_purge_deletes_it(
        client_for, caller, approved, settings):
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = 120
    api = client_for(caller)
    body = {"success": True, "duration_us": 40}
    assert post(api, USAGE, body, "daily").status_code == 201
    later = timezone.now() + datetime.timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        response = post(api, USAGE, body, "daily")
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response
        assert debits(caller) == 2
        assert idempotency_keys_purge() == 0  # taken over, so not expired
    with time_machine.travel(later + datetime.timedelta(seconds=1), tick=False):
        assert post(api, USAGE, body, "daily")["Idempotent-Replayed"] == "true"
    gone = later + datetime.timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS + 1)
    assert idempotency_keys_purge(now=gone) == 1
    assert not IdempotencyKey.objects.exists()


def test_a_replay_survives_a_secret_key_rotation_with_the_old_key_kept(
        client_for, caller, approved, settings):
    api = client_for(caller)
    body = {"success": True, "duration_us": 40}
    first = post(api, USAGE, body, "rotate")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-that-is-long-enough-to-be-a-real-one-0123"
    again = post(api, USAGE, body, "rotate")
    assert (again.status_code, again.content) == (201, first.content)
    assert debits(caller) == 1


def test_the_schema_documents_the_header(anon_client):
    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path, method in [("/api/v1/models/{name}/usage/", "post"), ("/api/v1/models/", "post"),
                         ("/api/v1/auth/tokens/", "post"), ("/api/v1/proposals/", "post"),
                         ("/api/v1/proposals/{id}/vote/", "post")]:
        operation = schema["paths"][path][method]
        headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        assert headers["Idempotency-Key"]["schema"]["pattern"] == "^[\\x21-\\x7e]{1,255}$"
        answered = operation["responses"]
        assert any("Idempotent-Replayed" in r.get("headers", {}) for r in answered.values())
    listing = schema["paths"]["/api/v1/models/"]["get"]
    assert not any(p["name"] == "Idempotency-Key" for p in listing.get("parameters", []))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_requests_with_one_key_run_once(client_for, caller, approved):
    body = {"success": True, "duration_us": 40}
    clients = [client_for(caller) for _ in range(8)]
    answers = run_at_once([lambda api=api: post(api, USAGE, body, "burst") for api in clients])
    assert [a.status_code for a in answers] == [201] * 8
    assert len({a.content for a in answers}) == 1
    assert sum(a.get("Idempotent-Replayed") == "true" for a in answers) == 7
    assert debits(caller) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_request_waiting_too_long_for_its_key_is_409(client_for, caller, approved, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 1
    api = client_for(caller)
    body = {"success": True, "duration_us": 40}
    holding, release = threading.Event(), threading.Event()

    def hold_the_key():
        # What a slow first request does: its claim is inserted and not yet committed.
        import hashlib

        with transaction.atomic():
            IdempotencyKey.objects.create(
                user=caller, key_digest=hashlib.sha256(b"slow").hexdigest(), fingerprint="x",
                created_at=timezone.now(), expires_at=timezone.now() + datetime.timedelta(1))
            holding.set()
            release.wait(10)
            transaction.set_rollback(True)
        connection.close()

    holder = threading.Thread(target=hold_the_key)
    holder.start()
    try:
        holding.wait(10)
        response = post(api, USAGE, body, "slow")
    finally:
        release.set()
        holder.join()
    assert (response.status_code, response.json()["code"]) == (409, "idempotency_key_in_use")
    assert response.json()["retry_after"] == 1
    assert debits(caller) == 0
    # The holder rolled back: the key was never answered, so it runs now.
    assert post(api, USAGE, body, "slow").status_code == 201
