"""Real races on PostgreSQL: row locks and unique indexes keep names, fees and counters exact.

serialized_rollback restores the rows the data migrations made (fee schedules, the
moderators group), which a transactional test's flush would otherwise remove.
"""

import pytest

from fees_app.models import LedgerEntry
from fees_app.services import account_for
from models_app.models import ModelName, Registration
from models_app.selectors import usage_stats
from models_app.services import registration_create, usage_record
from registry_site.errors import DomainError
from tests.concurrency import run_at_once
from tests.models_app.conftest import HASH

pytestmark = [pytest.mark.postgres,
              pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def first_registration(owner, version):
    return lambda: registration_create(owner=owner, name="contested", version=version,
                                       hash=HASH, size_bytes=1024, parameter_count=1)


def test_two_first_registrations_of_one_name_one_wins(user, other_user):
    # Different versions: the (name, version) constraint alone would let both in.
    results = run_at_once([first_registration(user, "1.0"), first_registration(other_user, "2.0")])
    winners = [r for r in results if isinstance(r, Registration)]
    losers = [r for r in results if isinstance(r, DomainError)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].code == "not_owner"
    assert Registration.objects.filter(name="contested").count() == 1
    assert ModelName.objects.get(name="contested").owner_id == winners[0].owner_id
    assert LedgerEntry.objects.filter(kind="debit", model_name="contested").count() == 1
    balances = sorted([account_for(user).balance, account_for(other_user).balance])
    assert balances == [1_000_000 - 2024, 1_000_000]


def test_same_version_twice_by_the_owner_is_one_registration(user):
    results = run_at_once([first_registration(user, "1.0"), first_registration(user, "1.0")])
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Registration"]
    assert LedgerEntry.objects.filter(kind="debit", model_name="contested").count() == 1
    assert account_for(user).balance == 1_000_000 - 2024


def test_twenty_concurrent_usage_records_are_exact(approved, make_user):
    callers = [make_user(f"caller{i}", balance=1000) for i in range(4)]
    workers = [
        (lambda caller=callers[i % 4], ok=i % 5 != 0, duration=1000 + i:
         usage_record(registration=approved, user=caller, success=ok, duration_us=duration))
        for i in range(20)
    ]
    results = run_at_once(workers)
    assert not [r for r in results if isinstance(r, DomainError)]
    stats = usage_stats(approved.pk)
    assert (stats.total_executions, stats.successful_executions, stats.failed_executions,
            stats.total_fees_collected, stats.unique_users) == (20, 16, 4, 2000, 4)
    assert stats.total_duration_us == sum(1000 + i for i in range(20))
    for caller in callers:
        assert account_for(caller).balance == 1000 - 5 * 100
        entries = LedgerEntry.objects.filter(account__user=caller)
        assert sum(e.signed_amount for e in entries) == 1000 - 5 * 100


def test_usage_races_with_insufficient_funds(approved, make_user):
    caller = make_user("tight", balance=1000)  # enough for 10 of 20 executions
    results = run_at_once([
        lambda: usage_record(registration=approved, user=caller, success=True, duration_us=1)
        for _ in range(20)
    ])
    assert sum(1 for r in results if isinstance(r, DomainError)) == 10
    assert account_for(caller).balance == 0
    assert usage_stats(approved.pk).total_executions == 10
