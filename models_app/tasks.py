"""Background jobs of models_app: thin wrappers over services, safe to run twice."""

import datetime

from celery import shared_task
from django.utils import timezone

from models_app.services import storage_fees_charge, usage_counters_fold, usage_deltas_vacuum


@shared_task(name="models_app.tasks.storage_fees_charge")
def storage_fees_charge_task(day: str | None = None) -> str:
    """Charge storage fees for ``day`` (YYYY-MM-DD), by default the day that just ended.

    Beat starts it just after midnight; each version is charged at most once a day, so a
    retried or repeated run charges nothing more.
    """
    date = (datetime.date.fromisoformat(day) if day
            else timezone.localdate() - datetime.timedelta(days=1))
    run = storage_fees_charge(day=date)
    return (f"storage fees for {date.isoformat()}: {run.charged} charged ({run.amount} in "
            f"total), {run.already_charged} already charged, {len(run.unpaid)} unpaid")


@shared_task(name="models_app.tasks.usage_counters_fold")
def usage_counters_fold_task() -> str:
    """Fold pending usage deltas into the counter rows (rows another fold holds wait), then
    vacuum the deltas' table."""
    folded = usage_counters_fold()
    vacuumed = usage_deltas_vacuum()
    return (f"usage counters: {folded} counter rows folded"
            + (", pending deltas vacuumed" if vacuumed else ""))
