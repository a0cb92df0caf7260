"""Prometheus metrics computed from the database at scrape time.

Figures come from the database rather than per-process counters, so every worker on every
host reports the same numbers and nothing needs a multiprocess collector.
"""

from django.db.models import Sum
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest


def render_metrics() -> tuple[bytes, str]:
    from fees_app.models import LedgerEntry
    from registry_site.models import AuditEvent

    registry = CollectorRegistry()
    fees = Gauge("ai_registry_fees_collected", "Fees collected, by fee type.", ["fee_type"],
                 registry=registry)
    for row in (LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).values("fee_type")
                .annotate(total=Sum("amount"))):
        fees.labels(row["fee_type"]).set(row["total"] or 0)
    audit = Gauge("ai_registry_audit_events", "Audit events recorded.", registry=registry)
    audit.set(AuditEvent.objects.count())
    for collect in _collectors:
        collect(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


_collectors = []


def register_collector(func):
    """Apps add their own gauges here (models by status, proposals by state...)."""
    _collectors.append(func)
    return func



