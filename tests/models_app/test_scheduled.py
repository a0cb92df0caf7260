"""manage.py run_scheduled runs every job of the beat schedule once, now, in-process."""

import datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from models_app.models import StorageCharge, UsageDelta, UsageStats
from registry_site.audit import audit_record, audit_verify
from registry_site.models import AuditEvent


def run_scheduled() -> str:
    out = StringIO()
    call_command("run_scheduled", stdout=out)
    return out.getvalue()


@pytest.fixture
def approved_yesterday(register, move, user):
    with time_machine.travel("2026-05-01T10:00:00Z", tick=True):
        return move(register(user, "stored", size_bytes=700), "approved")


def test_every_job_runs_once_now(approved_yesterday, settings):
    assert set(settings.CELERY_BEAT_SCHEDULE) == {"seal-audit-log", "charge-storage-fees",
                                                  "fold-usage-counters",
                                                  "purge-idempotency-keys"}
    audit_record(action="test.pending")
    with time_machine.travel("2026-05-02T00:05:00Z", tick=True):
        output = run_scheduled()
    assert "seal-audit-log (registry_site.tasks.seal_audit_log): sealed" in output
    assert ("purge-idempotency-keys (registry_site.tasks.purge_idempotency_keys): 0 expired"
            in output)
    assert ("charge-storage-fees (models_app.tasks.storage_fees_charge): storage fees for "
            "2026-05-01: 1 charged (700 in total), 0 already charged, 0 unpaid") in output
    charge = StorageCharge.objects.get()
    assert (charge.date, charge.amount, charge.status) == (datetime.date(2026, 5, 1), 700,
                                                          "paid")
    assert not AuditEvent.objects.filter(seq__isnull=True).exists()
    assert audit_verify() == (AuditEvent.objects.count(), None)


def test_running_the_jobs_again_does_nothing_more(approved_yesterday):
    with time_machine.travel("2026-05-02T00:05:00Z", tick=True):
        run_scheduled()
        again = run_scheduled()
    assert "0 charged (0 in total), 1 already charged" in again
    assert StorageCharge.objects.count() == 1
    assert audit_verify()[1] is None


def test_a_failed_job_fails_the_command_after_the_others_ran(db, settings):
    settings.CELERY_BEAT_SCHEDULE = {
        "broken": {"task": "models_app.tasks.storage_fees_charge",
                   "kwargs": {"day": "not a day"}, "schedule": 60.0},
        **settings.CELERY_BEAT_SCHEDULE,
    }
    audit_record(action="test.pending")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match=r"1 scheduled job\(s\) failed: broken"):
        call_command("run_scheduled", stdout=out, stderr=err)
    assert "broken (models_app.tasks.storage_fees_charge): failed: ValueError" in err.getvalue()
    assert "seal-audit-log (registry_site.tasks.seal_audit_log): sealed 1 event(s)" in (
        out.getvalue())


def test_the_fold_job_moves_usage_a_commit_did_not_fold(register, move, user):
    """A usage whose after-commit fold never ran (the process died) waits in UsageDelta."""
    registration = move(register(user, "folded"), "approved")
    UsageDelta.objects.create(registration_id=registration.pk, success=True, fee=3,
                              duration_us=40, new_user=True, recorded_at=timezone.now())
    output = run_scheduled()
    assert ("fold-usage-counters (models_app.tasks.usage_counters_fold): usage counters: 1 "
            "counter rows folded") in output
    assert not UsageDelta.objects.exists()
    stats = UsageStats.objects.get(pk=registration.pk)
    assert (stats.total_executions, stats.total_fees_collected, stats.unique_users) == (1, 3, 1)


@pytest.mark.parametrize("every_ms, pending_after", [(0, 0), (60_000, 2)])
def test_a_process_folds_after_a_commit_at_most_once_per_interval(
        register, move, user, make_user, settings, monkeypatch, every_ms, pending_after,
        django_capture_on_commit_callbacks):
    """0 (no broker): every record folds its own counters. With a broker, beat folds and a
    process folds at most once per USAGE_FOLD_AFTER_COMMIT_MS on top; the figures read the
    same either way."""
    from models_app import services
    from models_app.selectors import usage_stats

    settings.USAGE_FOLD_AFTER_COMMIT_MS = every_ms
    monkeypatch.setattr(services, "_last_fold", 0.0)
    registration = move(register(user, "folded-often"), "approved")
    caller = make_user("caller", balance=1000)
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            services.usage_record(registration=registration, user=caller, success=True,
                                  duration_us=10)
    assert UsageDelta.objects.count() == pending_after
    assert usage_stats(registration.pk).total_executions == 3
    run_scheduled()
    assert not UsageDelta.objects.exists()
    assert UsageStats.objects.get(pk=registration.pk).total_executions == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_fold_job_vacuums_the_pending_deltas_outside_a_transaction():
    """The deltas' table is a queue (an insert per record, a delete per fold): the scheduled
    fold vacuums it on PostgreSQL, which cannot vacuum inside a transaction."""
    from django.db import connection, transaction

    from models_app.services import usage_deltas_vacuum
    from models_app.tasks import usage_counters_fold_task

    on_postgres = connection.vendor == "postgresql"
    assert usage_deltas_vacuum() is on_postgres
    with transaction.atomic():
        assert usage_deltas_vacuum() is False
    assert usage_counters_fold_task().endswith(
        ", pending deltas vacuumed" if on_postgres else "counter rows folded")
