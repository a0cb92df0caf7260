"""manage.py charge_storage_fees: once per approved version and day, unpaid recorded."""

import datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from fees_app.models import LedgerEntry
from fees_app.services import account_for
from models_app.models import Registration, StorageCharge
from models_app.services import storage_fees_charge

Status = Registration.Status
DAY = datetime.date(2026, 5, 1)


def run(*args) -> str:
    out = StringIO()
    call_command("charge_storage_fees", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def approved_set(register, move, user, make_user):
    """Two approved versions of user's, one of a poor owner, and a pending one."""
    with time_machine.travel("2026-04-01T00:00:00Z", tick=True):
        move(register(user, "big", size_bytes=5000), Status.APPROVED)
        move(register(user, "small", size_bytes=300), Status.APPROVED)
        register(user, "waiting", size_bytes=100)
        poor = make_user("poor", balance=2000)
        move(register(poor, "poor-model", size_bytes=900), Status.APPROVED)  # leaves 100
    return poor


def test_charges_each_approved_version_once(approved_set, user):
    before = account_for(user).balance
    output = run("--date", DAY.isoformat())
    assert "charged now:      2 version(s), 5300 in total" in output
    assert "poor-model 1.0.0: owner poor could not pay 900" in output
    assert account_for(user).balance == before - 5300
    charges = {c.registration.name: c for c in StorageCharge.objects.select_related(
        "registration")}
    assert set(charges) == {"big", "small", "poor-model"}
    assert (charges["big"].status, charges["big"].amount) == ("paid", 5000)
    assert charges["big"].ledger_entry.fee_type == "storage"
    assert (charges["poor-model"].status, charges["poor-model"].amount) == ("unpaid", 900)
    assert charges["poor-model"].ledger_entry is None
    assert account_for(approved_set).balance == 100


def test_second_run_charges_nothing(approved_set, user):
    run("--date", DAY.isoformat())
    balance, entries = account_for(user).balance, LedgerEntry.objects.count()
    output = run("--date", DAY.isoformat())
    assert "charged now:      0 version(s), 0 in total" in output
    assert "already charged:  3 version(s)" in output
    assert account_for(user).balance == balance
    assert LedgerEntry.objects.count() == entries
    assert StorageCharge.objects.count() == 3
    # The next day is a new day.
    assert "charged now:      2 version(s)" in run("--date", "2026-05-02")


def test_versions_registered_after_the_day_are_not_charged(approved_set):
    assert storage_fees_charge(day=datetime.date(2026, 3, 31)).charged == 0


def test_default_day_is_today(approved_set):
    with time_machine.travel("2026-06-10T12:00:00Z"):
        run()
    assert set(StorageCharge.objects.values_list("date", flat=True)) == {
        datetime.date(2026, 6, 10)}


def test_bad_date_is_a_clear_error(db):
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        run("--date", "05/01/2026")


@pytest.fixture
def history(register, move, user):
    """One version suspended on 1 May and approved again on 2 May, one approved on 1 May and
    suspended on 2 May."""
    with time_machine.travel("2026-04-01T09:00:00Z", tick=False):
        back = move(register(user, "back", size_bytes=700), Status.APPROVED)
        gone = register(user, "gone", size_bytes=400)
    with time_machine.travel("2026-05-01T09:00:00Z", tick=False):
        move(back, Status.SUSPENDED)
        move(gone, Status.APPROVED)
    with time_machine.travel("2026-05-02T09:00:00Z", tick=False):
        move(back, Status.APPROVED)
        move(gone, Status.SUSPENDED)
    return back, gone


def charged(day: datetime.date) -> set[str]:
    return set(StorageCharge.objects.filter(date=day)
               .values_list("registration__name", flat=True))


def test_a_past_day_is_charged_by_the_status_on_that_day(history, user):
    before = account_for(user).balance
    with time_machine.travel("2026-05-02T12:00:00Z", tick=False):
        run = storage_fees_charge(day=DAY)
    # Suspended on 1 May, approved today: not charged for 1 May. Approved on 1 May,
    # suspended today: charged for 1 May.
    assert charged(DAY) == {"gone"}
    assert (run.charged, run.amount) == (1, 400)
    assert account_for(user).balance == before - 400
    assert charged(datetime.date(2026, 4, 30)) == set()
    storage_fees_charge(day=datetime.date(2026, 4, 30))
    assert charged(datetime.date(2026, 4, 30)) == {"back"}  # approved then, gone still pending
    storage_fees_charge(day=datetime.date(2026, 5, 2))
    assert charged(datetime.date(2026, 5, 2)) == {"back"}
