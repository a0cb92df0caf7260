"""Helpers for the PostgreSQL-only tests that race real threads against row locks."""

import threading

from django.db import connection, transaction


def run_at_once(jobs):
    """Start every job behind one barrier; return what each returned or raised, in order."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run(index, job):
        try:
            barrier.wait()
            results[index] = job()
        except Exception as exc:  # noqa: BLE001  (collected for the assertions)
            results[index] = exc
        finally:
            # Each thread has its own connection; close it so the test database can be dropped.
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def without_waiting(work, timeout: str = "300ms"):
    """Run ``work`` in a transaction that fails if it must wait ``timeout`` for any lock."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{timeout}'")
        return work()
