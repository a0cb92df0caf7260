"""Measure what the audit trail costs a write, and whether unrelated writes wait for each other.

On PostgreSQL only, and on a throw-away database (it creates users and tokens):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/air_bench manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/air_bench manage.py benchmark_audit

It prints the queries one audit_record() runs inside a transaction, then runs --threads
threads, each creating API tokens (an audited write) for its own user for --seconds while a
sampler reads pg_stat_activity for backends waiting on a lock, then (when the sealer exists)
how many events per second the sealer seals.
"""

import os
import threading
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from registry_site import audit
from registry_site.models import AuditEvent
from registry_site.services import token_create

WAITING = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""


class Command(BaseCommand):
    help = "Per-write cost of the audit trail and lock waits between unrelated audited writes."

    def add_arguments(self, parser):
        parser.add_argument("--threads", type=int, default=16)
        parser.add_argument("--seconds", type=float, default=10.0)
        parser.add_argument("--seal-events", type=int, default=20000)

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("benchmark_audit needs PostgreSQL (set DATABASE_URL).")
        users = [get_user_model().objects.get_or_create(username=f"bench-audit-{n}")[0]
                 for n in range(options["threads"])]
        self._queries(users[0])
        self._lock_waits(users, options["seconds"])
        if hasattr(audit, "audit_seal"):
            self._sealer(options["seal_events"])

    def _queries(self, user):
        # The write's own statements: without a broker the sealer would also run after the
        # commit, inside the capture, which is the sealer's cost and is measured below.
        with (override_settings(AUDIT_SEAL_ON_COMMIT=False),
              CaptureQueriesContext(connection) as queries, transaction.atomic()):
            audit.audit_record(action="bench.one", actor=user, details={"n": 1})
        self.stdout.write(f"queries per audit_record() in a transaction: {len(queries)}")
        for query in queries:
            self.stdout.write(f"  {query['sql'][:110]}")

    def _lock_waits(self, users, seconds):
        stop = threading.Event()
        writes = [0] * len(users)
        samples = {"taken": 0, "with_waiter": 0, "waiters": 0, "max": 0}

        def write(index, user):
            try:
                while not stop.is_set():
                    with transaction.atomic():
                        token_create(user=user, name="bench")
                        # A request's transaction does more than this one write: hold it open
                        # a little, as a real fee + ledger + counters transaction does.
                        time.sleep(0.002)
                    writes[index] += 1
            finally:
                connection.close()

        def sample():
            try:
                with connection.cursor() as cursor:
                    while not stop.is_set():
                        cursor.execute(WAITING)
                        waiting = cursor.fetchone()[0]
                        samples["taken"] += 1
                        samples["waiters"] += waiting
                        samples["max"] = max(samples["max"], waiting)
                        if waiting:
                            samples["with_waiter"] += 1
                        time.sleep(0.005)
            finally:
                connection.close()

        threads = [threading.Thread(target=write, args=(i, u)) for i, u in enumerate(users)]
        threads.append(threading.Thread(target=sample))
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        taken = samples["taken"] or 1
        self.stdout.write(
            f"{len(users)} threads, distinct users, {elapsed:.1f} s: {sum(writes)} audited writes "
            f"({sum(writes) / elapsed:.0f}/s); pg_stat_activity sampled {samples['taken']} "
            f"times: {100 * samples['with_waiter'] / taken:.0f}% of samples had a backend "
            f"waiting on a lock, {samples['waiters'] / taken:.2f} waiting on average, "
            f"{samples['max']} at most"
        )

    def _sealer(self, count):
        audit.audit_seal()
        AuditEvent.objects.bulk_create(
            AuditEvent(created_at=audit.timezone.now(), action="bench.seal", details={"n": n})
            for n in range(count)
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        # CPU, not only wall time: on a shared machine the wall clock mostly measures others.
        cpu_before, db_before = time.process_time(), _process_cpu(backend)
        started = time.monotonic()
        result = audit.audit_seal(max_batches=count)
        elapsed = time.monotonic() - started
        app_cpu = time.process_time() - cpu_before
        db_cpu = _process_cpu(backend) - db_before
        self.stdout.write(
            f"sealer: {result.sealed} events in {elapsed:.2f} s wall "
            f"({result.sealed / elapsed:.0f} events/s); CPU {app_cpu:.2f} s sealer + "
            f"{db_cpu:.2f} s PostgreSQL = {1000 * (app_cpu + db_cpu) / result.sealed:.2f} ms "
            f"per event ({result.sealed / (app_cpu + db_cpu):.0f} events per CPU-second)"
        )


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a local process (the PostgreSQL backend), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # PostgreSQL on another host: only the sealer's own CPU is counted
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
