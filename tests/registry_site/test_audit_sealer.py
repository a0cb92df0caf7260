"""The audit sealer: audited writes only append unsealed events; one sealer chains them in
commit order; verify_audit_log tells unsealed from broken; PostgreSQL keeps sealed rows."""

import datetime
import os
import subprocess
import sys
import threading
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, OperationalError, connection, transaction

from registry_site.audit import (
    ALTERED,
    GENESIS_HASH,
    SEAL_LOCK_KEY,
    audit_record,
    audit_report,
    audit_seal,
    audit_verify,
    event_digest,
)
from registry_site.models import AuditChainHead, AuditEvent
from registry_site.services import token_create
from tests.audit_helpers import sealed, tampering
from tests.concurrency import without_waiting

pytestmark = pytest.mark.django_db


def verify(*args) -> str:
    out = StringIO()
    call_command("verify_audit_log", *args, stdout=out)
    return out.getvalue()


def test_an_audited_write_is_one_insert_and_no_read_of_the_head(django_assert_num_queries):
    sealed([audit_record(action="test.first")])
    head = AuditChainHead.objects.get()
    with transaction.atomic(), django_assert_num_queries(1) as captured:
        event = audit_record(action="test.second", details={"n": 1})
    assert captured.captured_queries[0]["sql"].startswith('INSERT INTO "registry_site_auditevent"')
    event.refresh_from_db()
    assert (event.seq, event.prev_hash, event.hash) == (None, None, None)
    assert AuditChainHead.objects.get().last_hash == head.last_hash


def test_without_a_broker_one_seal_runs_after_commit(settings,
                                                    django_capture_on_commit_callbacks):
    settings.AUDIT_SEAL_ON_COMMIT = True
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        events = [audit_record(action="test.many", details={"i": i}) for i in range(3)]
    assert len(callbacks) == 1  # coalesced: one seal for the transaction, not one per event
    stored = AuditEvent.objects.in_bulk([e.pk for e in events])
    assert [stored[e.pk].seq for e in events] == [1, 2, 3]
    assert audit_verify() == (3, None)


def test_with_a_broker_nothing_is_enqueued_per_write(settings,
                                                    django_capture_on_commit_callbacks):
    settings.AUDIT_SEAL_ON_COMMIT = False  # beat seals
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        audit_record(action="test.one")
    assert callbacks == []
    assert AuditEvent.objects.get().seq is None


def test_sealing_twice_seals_nothing_more():
    events = sealed([audit_record(action="test.once") for _ in range(3)])
    assert audit_seal().sealed == 0
    assert [e.hash for e in sealed(events)] == [e.hash for e in events]


def test_sealing_in_batches_keeps_one_chain():
    events = [audit_record(action="test.batch", details={"i": i}) for i in range(7)]
    run = audit_seal(batch_size=3)
    assert (run.sealed, run.batches) == (7, 3)
    assert [e.seq for e in sealed(events)] == list(range(1, 8))
    assert audit_verify() == (7, None)


def test_unsealed_events_are_reported_apart_from_the_chain():
    sealed([audit_record(action="test.sealed") for _ in range(2)])
    audit_record(action="test.pending")
    audit_record(action="test.pending")
    report = audit_report()
    assert (report.checked, report.unsealed, report.ok) == (2, 2, True)
    output = verify()
    assert "Audit log intact: 2 events verified; 2 event(s) not sealed yet" in output


def test_unsealed_for_too_long_is_a_failure_of_its_own():
    sealed([audit_record(action="test.sealed")])
    with time_machine.travel(datetime.datetime.now(datetime.UTC)
                             - datetime.timedelta(minutes=5)):
        audit_record(action="test.stuck")
    with pytest.raises(CommandError) as stuck:
        verify()
    message = str(stuck.value)
    assert message.startswith("Audit log not sealed: 1 event(s) not sealed yet, the oldest for")
    assert "The 1 sealed events are intact" in message
    assert "is the sealer running" in message
    assert "broken" not in message
    assert "1 event(s) not sealed yet" in verify("--max-unsealed-age", "600")
    audit_seal()
    assert "Audit log intact: 2 events verified." in verify()


def test_broken_stays_broken_with_unsealed_events_named_apart():
    events = sealed([audit_record(action="test.sealed") for _ in range(3)])
    audit_record(action="test.pending")
    with tampering():
        AuditEvent.objects.filter(pk=events[1].pk).update(action="test.forged")
    with pytest.raises(CommandError) as broken:
        verify()
    message = str(broken.value)
    assert f"  event {events[1].pk}: {ALTERED}" in message
    assert "Apart from those, 1 event(s) not sealed yet" in message


def test_the_digest_covers_the_chain_position():
    events = sealed([audit_record(action="test.a"), audit_record(action="test.b")])
    second = events[1]
    common = {"prev_hash": second.prev_hash, "created_at": second.created_at,
              "actor_id": None, "action": "test.b", "target_type": "", "target_id": "",
              "ip": None, "details": {}}
    assert event_digest(seq=2, **common) == second.hash
    assert event_digest(seq=3, **common) != second.hash
    with tampering():
        AuditEvent.objects.filter(pk=second.pk).update(seq=5)
    assert audit_verify() == (2, f"event {second.pk}: {ALTERED}")


def test_events_sealed_before_positions_were_hashed_still_verify():
    """Migration 0004 numbered the events chained before it; their digests had no seq."""
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    legacy = AuditEvent.objects.create(created_at=at, action="test.legacy", details={})
    digest = event_digest(prev_hash=GENESIS_HASH, created_at=legacy.created_at, actor_id=None,
                          action="test.legacy", target_type="", target_id="", ip=None,
                          details={})
    with tampering():
        AuditEvent.objects.filter(pk=legacy.pk).update(seq=1, prev_hash=GENESIS_HASH,
                                                       hash=digest)
    AuditChainHead.objects.create(pk=1, last_hash=digest, last_seq=1, legacy_seq=1)
    sealed([audit_record(action="test.new")])
    assert audit_verify() == (2, None)
    AuditChainHead.objects.update(legacy_seq=0)  # the old digest no longer excused
    assert audit_verify() == (2, f"event {legacy.pk}: {ALTERED}")


def test_a_broker_url_of_another_kind_stops_start_up():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry_site.settings",
           "CELERY_BROKER_URL": "http://broker:5672"}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "CELERY_BROKER_URL must start with amqp://" in result.stderr


def test_a_broker_turns_off_in_process_tasks_and_sealing_on_commit():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry_site.settings",
           "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"}
    script = ("import django; django.setup(); from django.conf import settings as s; "
              "from registry_site.celery import app; "
              "print(s.AUDIT_SEAL_ON_COMMIT, app.conf.task_always_eager, app.conf.broker_url)")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.split() == ["False", "False", "amqp://guest:guest@127.0.0.1:5672//"]
    del env["CELERY_BROKER_URL"]
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.split()[:2] == ["True", "True"]


# PostgreSQL: real concurrent transactions.

def _in_thread(target):
    def run():
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres
def test_the_trigger_refuses_to_change_or_delete_a_sealed_row():
    event = sealed([audit_record(action="test.kept", details={"n": 1})])[0]
    for change in ({"details": {"n": 2}}, {"hash": "f" * 64}, {"seq": None, "prev_hash": None,
                                                                 "hash": None}):
        with pytest.raises(DatabaseError, match=f"audit event {event.pk} is sealed"), \
                transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(**change)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert sealed([event])[0].hash == event.hash
    # Unsealed rows take only their seal.
    pending = audit_record(action="test.pending")
    with pytest.raises(DatabaseError, match="sealing sets seq, prev_hash and hash"), \
            transaction.atomic():
        AuditEvent.objects.filter(pk=pending.pk).update(action="test.forged")
    assert audit_seal().sealed == 1
    assert audit_verify() == (2, None)


@pytest.mark.postgres
def test_tampering_as_a_superuser_past_the_trigger_is_still_detected():
    events = sealed([audit_record(action="test.a"), audit_record(action="test.b")])
    with tampering():
        AuditEvent.objects.filter(pk=events[0].pk).update(details={"forged": True})
    assert audit_verify() == (2, f"event {events[0].pk}: {ALTERED}")


@pytest.mark.postgres
def test_only_one_sealer_runs_at_a_time():
    holding, release = threading.Event(), threading.Event()

    def other_sealer():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
            holding.set()
            release.wait(30)

    thread = _in_thread(other_sealer)
    try:
        assert holding.wait(30)
        event = audit_record(action="test.waiting")
        run = audit_seal()
        assert (run.skipped, run.sealed) == (True, 0)
        assert str(run) == "skipped: another sealer is running"
        assert AuditEvent.objects.get(pk=event.pk).seq is None
    finally:
        release.set()
        thread.join()
    assert audit_seal().sealed == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_event_committed_late_is_sealed_later_in_the_chain(settings):
    settings.AUDIT_SEAL_ON_COMMIT = False
    recorded, commit = threading.Event(), threading.Event()
    late = {}

    def slow_transaction():
        with transaction.atomic():
            late["event"] = audit_record(action="test.late")
            recorded.set()
            commit.wait(30)

    thread = _in_thread(slow_transaction)
    try:
        assert recorded.wait(30)
        early = audit_record(action="test.early")  # a higher id, committed first
        assert early.pk > late["event"].pk
        assert audit_seal().sealed == 1  # the open transaction's event is not visible yet
    finally:
        commit.set()
        thread.join()
    assert audit_seal().sealed == 1
    stored = AuditEvent.objects.in_bulk([early.pk, late["event"].pk])
    assert (stored[early.pk].seq, stored[late["event"].pk].seq) == (1, 2)
    assert stored[late["event"].pk].prev_hash == stored[early.pk].hash
    assert audit_verify() == (2, None)
    assert "2 events verified." in verify()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_audited_writes_of_different_users_do_not_wait_for_each_other(make_user):
    first, second = make_user("first"), make_user("second")
    inside, finish = threading.Event(), threading.Event()

    def open_transaction():
        with transaction.atomic():
            token_create(user=first, name="held open")
            inside.set()
            finish.wait(30)

    thread = _in_thread(open_transaction)
    try:
        assert inside.wait(30)
        try:
            without_waiting(lambda: token_create(user=second, name="not waiting"), "200ms")
        except OperationalError as exc:  # lock_timeout: it waited on the other transaction
            pytest.fail(f"an audited write waited on another user's transaction: {exc}")
    finally:
        finish.set()
        thread.join()
    audit_seal()
    assert audit_verify()[1] is None
    assert AuditEvent.objects.filter(action="token.created").count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_audit_benchmark_reports_queries_waits_and_sealing():
    out = StringIO()
    call_command("benchmark_audit", threads=2, seconds=0.3, seal_events=20, stdout=out)
    output = out.getvalue()
    assert "queries per audit_record() in a transaction: 3" in output  # BEGIN, INSERT, COMMIT
    assert "0% of samples had a backend waiting on a lock" in output
    assert "sealer: 20 events in" in output
    assert audit_verify()[1] is None
