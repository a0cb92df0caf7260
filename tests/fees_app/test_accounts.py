"""Accounts and the ledger: credits, debits, short balances, atomicity and the invariants."""

import contextlib
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Sum, When

from fees_app.models import Account, LedgerEntry
from fees_app.services import account_credit, account_for, fee_charge
from registry_site.errors import InsufficientFunds, InvalidInput
from registry_site.models import AuditEvent


def ledger_sum(user) -> int:
    signed = Case(When(kind="credit", then=F("amount")), default=-F("amount"))
    return LedgerEntry.objects.filter(account__user=user).aggregate(s=Sum(signed))["s"] or 0


def balance(user) -> int:
    return Account.objects.get(user=user).balance


@pytest.mark.django_db
def test_account_is_created_empty_on_first_use(make_user):
    someone = make_user()
    assert not Account.objects.filter(user=someone).exists()
    assert account_for(someone).balance == 0
    assert account_for(someone) == Account.objects.get(user=someone)


@pytest.mark.django_db
def test_credit_adds_a_ledger_row_and_an_audit_event(make_user, moderator):
    someone = make_user()
    entry = account_credit(user=someone, amount=5000, actor=moderator, reason="  top-up ")
    assert (entry.kind, entry.amount, entry.balance_after, entry.reason, entry.created_by) == (
        "credit", 5000, 5000, "top-up", moderator)
    assert balance(someone) == 5000
    event = AuditEvent.objects.filter(action="account.credited").latest("id")
    assert event.actor == moderator
    assert event.details["amount"] == 5000
    assert event.details["balance"] == 5000


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "reason", "field"),
    [(0, "x", "amount"), (-5, "x", "amount"), (10**15 + 1, "x", "amount"), (True, "x", "amount"),
     ("ten", "x", "amount"), (1.5, "x", "amount"), (10, "", "reason"), (10, "   ", "reason"),
     (10, "r" * 501, "reason")],
)
def test_credit_refuses_bad_input(make_user, amount, reason, field):
    someone = make_user()
    with pytest.raises(InvalidInput) as refused:
        account_credit(user=someone, amount=amount, reason=reason)
    assert field in refused.value.extra["fields"]
    assert not LedgerEntry.objects.filter(account__user=someone).exists()


@pytest.mark.django_db
def test_debit_names_fee_type_version_units_amount_and_model(user):
    entry = fee_charge(user=user, fee_type="registration", units=1024, model_name="bert",
                       model_version="1.0")
    assert (entry.kind, entry.amount, entry.fee_type, entry.units, entry.schedule.version,
            entry.model_name, entry.model_version, entry.balance_after) == (
        "debit", 2024, "registration", 1024, 1, "bert", "1.0", 1_000_000 - 2024)
    assert balance(user) == 1_000_000 - 2024


@pytest.mark.django_db
def test_short_balance_raises_with_needed_and_balance_and_writes_nothing(make_user):
    poor = make_user(balance=2023)
    entries = LedgerEntry.objects.count()
    with pytest.raises(InsufficientFunds) as refused:
        fee_charge(user=poor, fee_type="registration", units=1024)
    assert refused.value.extra["needed"] == 2024
    assert refused.value.extra["balance"] == 2023
    assert refused.value.status_code == 402
    assert balance(poor) == 2023
    assert LedgerEntry.objects.count() == entries


@pytest.mark.django_db
def test_exact_balance_is_enough(make_user):
    exact = make_user(balance=2024)
    fee_charge(user=exact, fee_type="registration", units=1024)
    assert balance(exact) == 0
    with pytest.raises(InsufficientFunds):
        fee_charge(user=exact, fee_type="execution", units=1)


@pytest.mark.django_db
def test_the_largest_units_are_stored(user):
    entry = fee_charge(user=user, fee_type="registration", units=10**15)
    entry.refresh_from_db()
    assert (entry.units, entry.amount) == (10**15, 1_000_000)


@pytest.mark.django_db
def test_zero_fee_debits_on_an_empty_account(make_user):
    # A storage fee for 0 bytes costs 0: it is recorded but needs no funds.
    nobody = make_user()
    entry = fee_charge(user=nobody, fee_type="storage", units=0)
    assert (entry.amount, entry.balance_after) == (0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(("fee_type", "units", "field"),
                         [("gift", 1, "fee_type"), ("storage", -1, "units"),
                          ("storage", 1.5, "units"), ("storage", True, "units"),
                          ("storage", 10**15 + 1, "units"), ("execution", 2**63, "units")])
def test_debit_refuses_bad_input(user, fee_type, units, field):
    with pytest.raises(InvalidInput) as refused:
        fee_charge(user=user, fee_type=fee_type, units=units)
    assert field in refused.value.extra["fields"]
    assert balance(user) == 1_000_000


class Boom(Exception):
    pass


@pytest.mark.django_db
def test_debit_in_a_transaction_that_fails_leaves_no_trace(user):
    entries = LedgerEntry.objects.count()
    with pytest.raises(Boom), transaction.atomic():
        fee_charge(user=user, fee_type="registration", units=5000, model_name="doomed")
        assert balance(user) == 1_000_000 - 6000
        raise Boom
    assert balance(user) == 1_000_000
    assert LedgerEntry.objects.count() == entries
    assert not LedgerEntry.objects.filter(model_name="doomed").exists()
    assert ledger_sum(user) == 1_000_000


@pytest.mark.django_db
def test_credit_in_a_transaction_that_fails_leaves_no_trace(user):
    events = AuditEvent.objects.count()
    with pytest.raises(Boom), transaction.atomic():
        account_credit(user=user, amount=10, reason="undone")
        raise Boom
    assert balance(user) == 1_000_000
    assert AuditEvent.objects.count() == events
    assert ledger_sum(user) == 1_000_000


@pytest.mark.django_db
def test_balance_always_equals_the_ledger(make_user, moderator):
    someone = make_user(balance=50_000)
    steps = [
        lambda: fee_charge(user=someone, fee_type="registration", units=1024),
        lambda: account_credit(user=someone, amount=777, actor=moderator, reason="gift"),
        lambda: fee_charge(user=someone, fee_type="update", units=5000),
        lambda: fee_charge(user=someone, fee_type="proposal", units=1),
        lambda: fee_charge(user=someone, fee_type="execution", units=1),
        lambda: fee_charge(user=someone, fee_type="registration", units=10**9),
        lambda: fee_charge(user=someone, fee_type="storage", units=3),
    ]
    for step in steps:
        with contextlib.suppress(InsufficientFunds):
            step()
        assert balance(someone) == ledger_sum(someone)
        last = LedgerEntry.objects.filter(account__user=someone).first()
        assert last.balance_after == balance(someone)
    assert balance(someone) == 50_000 - 2024 + 777 - 5500 - 10_000 - 100 - 3


@pytest.mark.django_db
def test_database_keeps_balances_non_negative(user):
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(user=user).update(balance=-1)
    assert balance(user) == 1_000_000


@pytest.mark.django_db
def test_database_refuses_ledger_rows_that_break_the_rules(user):
    account = account_for(user)
    bad_rows = [
        {"kind": "credit", "amount": 0, "balance_after": 1},
        {"kind": "credit", "amount": -5, "balance_after": 1},
        {"kind": "credit", "amount": 5, "balance_after": -1},
        {"kind": "debit", "amount": 5, "balance_after": 1},  # a debit must name its fee
    ]
    for row in bad_rows:
        with pytest.raises(IntegrityError), transaction.atomic():
            LedgerEntry.objects.create(account=account, **row)


@pytest.mark.django_db
def test_ledger_rows_protect_the_account(user):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        account_for(user).delete()


# manage.py credit_account


@pytest.mark.django_db
def test_credit_account_command(make_user, capsys):
    someone = make_user("carol")
    call_command("credit_account", "carol", "2500", "--reason", "operator top-up")
    assert "balance is now 2500" in capsys.readouterr().out
    assert balance(someone) == 2500
    entry = LedgerEntry.objects.get(account__user=someone)
    assert (entry.reason, entry.created_by) == ("operator top-up", None)
    assert AuditEvent.objects.filter(action="account.credited", actor=None).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "10", "--reason", "x"], "No user named 'nobody'"),
        (["carol", "ten", "--reason", "x"], "invalid int value"),
        (["carol", "0", "--reason", "x"], "amount: .*greater than or equal to 1"),
        (["carol", "-3", "--reason", "x"], "amount: .*greater than or equal to 1"),
        (["carol", "10"], "--reason"),
        (["carol", "10", "--reason", " "], "reason"),
    ],
)
def test_credit_account_command_refusals(make_user, args, message):
    someone = make_user("carol")
    with pytest.raises(CommandError, match=message):
        call_command("credit_account", *args)
    assert not LedgerEntry.objects.filter(account__user=someone).exists()


# The admin's credit action


@pytest.mark.django_db
def test_admin_credit_action_asks_for_amount_and_reason(client, moderator, make_user):
    alice, bob = make_user("alice"), make_user("bob", balance=5)
    accounts = [account_for(alice).pk, account_for(bob).pk]
    client.force_login(moderator)
    url = "/admin/fees_app/account/"
    page = client.post(url, {"action": "credit", "_selected_action": accounts})
    assert page.status_code == 200
    assert b"Credit these accounts" in page.content
    assert b'name="amount"' in page.content and b'name="reason"' in page.content
    assert b'href="/admin/fees_app/account/">Cancel' in page.content
    assert balance(bob) == 5  # nothing happens before the form is filled in

    invalid = client.post(url, {"action": "credit", "_selected_action": accounts, "apply": "1",
                                "amount": "0", "reason": ""})
    assert invalid.status_code == 200
    assert set(invalid.context["form"].errors) == {"amount", "reason"}
    assert balance(bob) == 5

    done = client.post(url, {"action": "credit", "_selected_action": accounts, "apply": "1",
                             "amount": "300", "reason": "welcome"}, follow=True)
    assert done.status_code == 200
    assert balance(alice) == 300
    assert balance(bob) == 305
    assert b"Credited 300 to alice" in done.content
    events = AuditEvent.objects.filter(action="account.credited", actor=moderator)
    assert events.count() == 2
    assert {e.details["reason"] for e in events} == {"welcome"}


@pytest.mark.django_db
def test_admin_credit_action_refused_to_a_plain_staff_user(client, make_user):
    staff = make_user("staff", is_staff=True)
    target = make_user("target", balance=5)
    client.force_login(staff)
    response = client.post("/admin/fees_app/account/", {
        "action": "credit", "_selected_action": [account_for(target).pk], "apply": "1",
        "amount": "300", "reason": "sneaky"})
    assert response.status_code == 403
    assert balance(target) == 5


@pytest.mark.django_db
def test_admin_account_page_is_read_only(client, moderator, user):
    client.force_login(moderator)
    account = account_for(user)
    page = client.get(f"/admin/fees_app/account/{account.pk}/change/")
    assert page.status_code == 200
    client.post(f"/admin/fees_app/account/{account.pk}/change/", {"balance": "9"})
    assert balance(user) == 1_000_000
    assert client.get("/admin/fees_app/account/add/").status_code == 403


# Real concurrency (PostgreSQL row locks)

FEE = 2024  # a 1,024-byte registration


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_debits_never_overspend(make_user):
    payer = make_user(balance=FEE * 10)
    barrier = threading.Barrier(20)
    results = []

    def debit():
        try:
            barrier.wait()
            fee_charge(user=payer, fee_type="registration", units=1024)
            results.append("ok")
        except InsufficientFunds:
            results.append("short")
        finally:
            connection.close()

    threads = [threading.Thread(target=debit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 10
    assert results.count("short") == 10
    assert balance(payer) == 0
    assert ledger_sum(payer) == 0
    assert LedgerEntry.objects.filter(account__user=payer, kind="debit").count() == 10
    # balance_after is strictly decreasing: no two debits saw the same balance.
    afters = sorted(LedgerEntry.objects.filter(account__user=payer, kind="debit")
                    .values_list("balance_after", flat=True))
    assert afters == [FEE * i for i in range(10)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_credits_and_debits_keep_balance_equal_to_ledger(make_user):
    payer = make_user(balance=FEE * 5)
    barrier = threading.Barrier(16)

    def work(i):
        try:
            barrier.wait()
            if i % 2:
                account_credit(user=payer, amount=FEE, reason=f"top-up {i}")
            else:
                fee_charge(user=payer, fee_type="registration", units=1024)
        except InsufficientFunds:
            pass
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert balance(payer) == ledger_sum(payer)
    assert balance(payer) >= 0


def test_an_account_cannot_be_saved_from_the_admin(client, moderator, user):
    """A save would write back a balance read before concurrent debits; only the credit
    action changes balances."""
    client.force_login(moderator)
    account = account_for(user)
    url = f"/admin/fees_app/account/{account.pk}/change/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"balance": 5}).status_code == 403
    account.refresh_from_db()
    assert account.balance == 1_000_000
