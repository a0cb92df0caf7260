"""Bounds that protect the storage layout and the 64-bit columns, and narrow integrity catches."""

import pytest
from django.db import IntegrityError, transaction

from fees_app.calculator import MAX_STORED_INT
from fees_app.models import Account, LedgerEntry
from fees_app.services import account_credit, account_for, fee_quote
from models_app.models import ModelName, ModelUser, Registration, UsageStats
from models_app.selectors import usage_stats
from registry_site.errors import Conflict
from registry_site.integrity import is_unique_violation
from registry_site.models import AuditEvent
from tests.models_app.test_api import BODY


@pytest.mark.parametrize("version", [".", ".."])
def test_dot_versions_are_refused_before_any_charge(user_client, user, version):
    response = user_client.post("/api/v1/models/", {**BODY, "version": version}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], list(body["fields"])) == ("invalid", ["version"])
    assert not Registration.objects.exists()
    assert not ModelName.objects.exists()
    assert account_for(user).balance == 1_000_000


def test_versions_with_dots_inside_are_fine(user_client):
    response = user_client.post("/api/v1/models/", {**BODY, "version": "..."}, format="json")
    assert response.status_code == 201
    response = user_client.post("/api/v1/models/", {**BODY, "version": "1.0..rc"},
                                format="json")
    assert response.status_code == 201


def _usage_snapshot(registration):
    """The exact counters: the folded row plus pending deltas."""
    usage = usage_stats(registration.pk)
    return {name: getattr(usage, name) for name in [*UsageStats.COUNTERS, "last_execution"]}


def _refused_without_trace(response, registration, user, counter, before, balance):
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "counter_overflow"
    assert response.json()["counters"] == [counter]
    assert _usage_snapshot(registration) == before
    assert account_for(user).balance == balance
    assert not LedgerEntry.objects.filter(account__user=user, kind="debit").exists()
    assert not ModelUser.objects.filter(user=user).exists()
    assert not AuditEvent.objects.filter(action="model.usage_recorded").exists()


def test_usage_that_would_overflow_the_duration_is_refused_not_a_500(client_for, other_user,
                                                                     approved):
    UsageStats.objects.filter(pk=approved.pk).update(total_duration_us=MAX_STORED_INT - 10)
    before = _usage_snapshot(approved)
    api = client_for(other_user)
    url = f"/api/v1/models/{approved.name}/usage/"
    response = api.post(url, {"success": True, "duration_us": 11}, format="json")
    _refused_without_trace(response, approved, other_user, "total_duration_us", before,
                           1_000_000)
    # Not a permanent failure: a record that fits still goes through, up to the last unit.
    response = api.post(url, {"success": True, "duration_us": 10}, format="json")
    assert response.status_code == 201
    assert _usage_snapshot(approved)["total_duration_us"] == MAX_STORED_INT


def test_usage_that_would_overflow_the_fees_collected_is_refused(client_for, other_user,
                                                                 approved):
    fee = fee_quote(fee_type="execution", units=1)[1].amount
    UsageStats.objects.filter(pk=approved.pk).update(
        total_fees_collected=MAX_STORED_INT - fee + 1)
    before = _usage_snapshot(approved)
    response = client_for(other_user).post(f"/api/v1/models/{approved.name}/usage/",
                                           {"success": False, "duration_us": 1}, format="json")
    _refused_without_trace(response, approved, other_user, "total_fees_collected", before,
                           1_000_000)


def test_a_credit_that_would_overflow_the_balance_is_refused(make_user):
    someone = make_user(balance=10)
    Account.objects.filter(user=someone).update(balance=MAX_STORED_INT - 10)
    with pytest.raises(Conflict) as refused:
        account_credit(user=someone, amount=11, reason="top-up")
    assert refused.value.code == "counter_overflow"
    assert account_for(someone).balance == MAX_STORED_INT - 10
    assert LedgerEntry.objects.filter(account__user=someone).count() == 1
    assert account_credit(user=someone, amount=10, reason="top-up").balance_after \
        == MAX_STORED_INT


def test_only_a_duplicate_key_is_a_unique_violation(user, register):
    register(user, "taken")
    with pytest.raises(IntegrityError) as duplicate, transaction.atomic():
        ModelName.objects.create(name="taken", owner=user)
    assert is_unique_violation(duplicate.value)
    with pytest.raises(IntegrityError) as check, transaction.atomic():
        Account.objects.filter(user=user).update(balance=-1)
    assert not is_unique_violation(check.value)
    with pytest.raises(IntegrityError) as not_null, transaction.atomic():
        ModelName.objects.create(name="orphan", owner_id=None)
    assert not is_unique_violation(not_null.value)
