"""Tasks through a real broker and a real worker (the third pass of .ci/run, on RabbitMQ).

Run with CELERY_BROKER_URL set and -m celery_worker; skipped otherwise. The worker runs in a
thread of this process on its own database connection, so the tests use committed data.
"""

import datetime
import time
import uuid

import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connection

from models_app.models import StorageCharge
from models_app.tasks import storage_fees_charge_task
from registry_site.audit import audit_record, audit_verify
from registry_site.celery import app
from registry_site.models import AuditEvent
from registry_site.tasks import seal_audit_log

pytestmark = [pytest.mark.celery_worker,
              pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _close_worker_connection(**_):
    connection.close()  # the worker thread's own: the test database can then be dropped


@pytest.fixture(scope="module")
def worker():
    """One worker for the module: starting and stopping one takes seconds."""
    # A queue of this run's own: other runs on the same broker neither take our tasks nor
    # leave theirs for us.
    queue = f"ai-registry-test-{uuid.uuid4().hex[:12]}"
    default_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    task_postrun.connect(_close_worker_connection, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue],
                          shutdown_timeout=30):
            yield
    finally:
        task_postrun.disconnect(_close_worker_connection)
        app.conf.task_default_queue = default_queue
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


def wait_for(check, what: str):
    """Poll until check() is true; a worker that never does the work fails the test."""
    deadline = time.monotonic() + 60
    while not check():
        assert time.monotonic() < deadline, f"the worker did not {what} within 60 s"
        time.sleep(0.1)


def test_the_worker_seals_audit_events(worker, settings):
    assert not settings.CELERY_TASK_ALWAYS_EAGER and not settings.AUDIT_SEAL_ON_COMMIT
    events = [audit_record(action="test.via_worker", details={"i": i}) for i in range(5)]
    assert not AuditEvent.objects.filter(seq__isnull=False).exists()  # nothing seals inline
    seal_audit_log.delay()
    wait_for(lambda: not AuditEvent.objects.filter(seq__isnull=True).exists(),
             "seal the audit log")
    stored = AuditEvent.objects.in_bulk([e.pk for e in events])
    assert [stored[e.pk].seq for e in events] == [1, 2, 3, 4, 5]
    assert audit_verify() == (5, None)


def test_the_worker_charges_storage_fees_once(worker, register, move, user):
    with time_machine.travel("2026-05-01T10:00:00Z", tick=True):
        move(register(user, "stored", size_bytes=700), "approved")
    for _ in range(2):  # a repeated delivery charges nothing more
        storage_fees_charge_task.delay(day="2026-05-01")
    wait_for(lambda: StorageCharge.objects.filter(status="paid").exists(), "charge the fee")
    seal_audit_log.delay()  # queued behind both charges on the one solo worker
    wait_for(lambda: not AuditEvent.objects.filter(seq__isnull=True).exists(),
             "seal the audit log")
    charge = StorageCharge.objects.get()
    assert (charge.date, charge.amount) == (datetime.date(2026, 5, 1), 700)
    assert AuditEvent.objects.filter(action="storage_fees.charged").count() == 1
    assert audit_verify()[1] is None
