"""Prometheus gauges for fees, read from the database at scrape time."""

from django.db.models import Sum
from prometheus_client import Gauge

from fees_app.models import LedgerEntry
from registry_site.metrics import register_collector


@register_collector
def fees_collected(registry) -> None:
    gauge = Gauge("ai_registry_fees_collected", "Fees collected, by fee type.", ["fee_type"],
                  registry=registry)
    for row in (LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).values("fee_type")
                .annotate(total=Sum("amount"))):
        gauge.labels(row["fee_type"]).set(row["total"] or 0)
