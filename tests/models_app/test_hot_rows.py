"""Hot rows on PostgreSQL: writes of different users on one model, one fee schedule or one
proposal never wait for each other's transactions.

Each test keeps one user's write open (with every lock it took) in a thread and makes another
user's write on the same object under a short lock_timeout: a wait for the first transaction
would fail it with LockNotAvailable instead of committing.
"""

import threading
from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from fees_app.models import LedgerEntry
from fees_app.services import account_for, schedule_install
from models_app.selectors import usage_stats
from models_app.services import usage_record
from tests.concurrency import without_waiting

pytestmark = [pytest.mark.postgres,
              pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@contextmanager
def held_open(work):
    """Run ``work`` in a thread's transaction and keep it open (locks held) inside the block."""
    done, release, outcome = threading.Event(), threading.Event(), {}

    def run():
        try:
            with transaction.atomic():
                outcome["value"] = work()
                done.set()
                assert release.wait(30)
        except Exception as exc:  # noqa: BLE001  (reported below)
            outcome["error"] = exc
            done.set()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert done.wait(30)
    try:
        assert "error" not in outcome, outcome.get("error")
        yield outcome
    finally:
        release.set()
        thread.join()


def test_two_users_record_usage_of_one_modelwithout_waiting(approved, make_user):
    """Usage used to lock the registration FOR UPDATE and update its counter row in the
    transaction: every user of a model queued behind the others' commits."""
    first, second = make_user("first", balance=1000), make_user("second", balance=1000)
    with held_open(lambda: usage_record(registration=approved, user=first, success=True,
                                        duration_us=10)):
        record = without_waiting(lambda: usage_record(registration=approved, user=second,
                                                      success=False, duration_us=20))
    assert record.balance == 900
    stats = usage_stats(approved.pk)
    assert (stats.total_executions, stats.successful_executions, stats.failed_executions,
            stats.total_fees_collected, stats.total_duration_us, stats.unique_users) == (
        2, 1, 1, 200, 30, 2)


@pytest.mark.parametrize("chosen", ["registration", "name and version"])
def test_a_suspension_waits_for_usage_in_flight_and_usage_then_sees_it(approved, make_user,
                                                                       moderator, chosen):
    """The share lock keeps the guarantee of the old FOR UPDATE: no usage of a version that a
    committed suspension has stopped, whether the caller passed the version or named it."""
    from models_app.services import registration_transition
    from registry_site.errors import Conflict, NotFound

    caller = make_user("caller", balance=1000)
    which = ({"registration": approved} if chosen == "registration"
             else {"name": approved.name, "version": approved.version})
    with held_open(lambda: usage_record(**which, user=caller, success=True,
                                        duration_us=1)), pytest.raises(Exception) as waited:
        without_waiting(lambda: registration_transition(
            registration=approved, to_status="suspended", actor=moderator, source="api",
            reason="r"))
    assert "lock timeout" in str(waited.value)
    registration_transition(registration=approved, to_status="suspended", actor=moderator,
                            source="api", reason="r")
    # Passed, it is refused as not approved; named, the caller can no longer see it (404),
    # as a read of it answers.
    refusal = Conflict if chosen == "registration" else NotFound
    with pytest.raises(refusal):
        usage_record(**which, user=caller, success=True, duration_us=1)
    assert usage_stats(approved.pk).total_executions == 1


def test_usage_by_name_waits_for_a_suspension_and_then_takes_the_next_approved(
        register, move, user, make_user, moderator):
    """Named without a version, the newest approved version is chosen under the lock: a
    suspension of it that commits first sends the record to the next approved one, never to
    the suspended one."""
    from models_app.services import registration_transition

    move(register(user, "llama.cpp", "1.0"), "approved")
    newest = move(register(user, "llama.cpp", "2.0"), "approved")
    caller = make_user("caller", balance=1000)
    with held_open(lambda: registration_transition(
            registration=newest, to_status="suspended", actor=moderator, source="api",
            reason="r")), pytest.raises(Exception) as waited:
        without_waiting(lambda: usage_record(name="llama.cpp", user=caller, success=True,
                                             duration_us=1))
    assert "lock timeout" in str(waited.value)
    record = usage_record(name="llama.cpp", user=caller, success=True, duration_us=1)
    assert record.registration.version == "1.0"
    assert usage_stats(newest.pk).total_executions == 0


def test_a_schedule_install_does_not_hold_up_charges(approved, make_user, moderator):
    """The install locked the type's first version FOR UPDATE; while that version is the
    active one every charge's ledger row (its foreign key takes a key-share lock on it)
    waited for the install to commit."""
    caller = make_user("caller", balance=1000)
    with held_open(lambda: schedule_install(
            fee_type="execution", method="fixed", base_fee=7, unit_fee=0, min_fee=1,
            max_fee=10, actor=moderator, reason="cheaper")):
        record = without_waiting(lambda: usage_record(registration=approved, user=caller,
                                                      success=True, duration_us=1))
    # Ordered before the install, which had not committed: the old schedule, named as such.
    assert record.fee == 100
    entry = LedgerEntry.objects.get(account__user=caller, kind="debit")
    assert entry.schedule.version == 1
    assert usage_record(registration=approved, user=caller, success=True,
                        duration_us=1).fee == 7
    assert account_for(caller).balance == 1000 - 100 - 7
