"""Prometheus gauges for governance, read from the database at scrape time."""

from django.db.models import Count
from django.utils import timezone
from prometheus_client import Gauge

from governance_app.models import Proposal
from registry_site.metrics import register_collector


@register_collector
def proposals_by_type_and_state(registry) -> None:
    gauge = Gauge("ai_registry_proposals", "Governance proposals, by type and current state.",
                  ["type", "state"], registry=registry)
    rows = (Proposal.objects.with_state(timezone.now()).values("type", "state")
            .annotate(n=Count("id")).order_by())
    for row in rows:
        gauge.labels(row["type"], row["state"]).set(row["n"])
