"""Prometheus gauges for the model registry, read from the database at scrape time."""

from django.db.models import Count
from prometheus_client import Gauge

from models_app.models import Registration
from models_app.selectors import total_executions
from registry_site.metrics import register_collector


@register_collector
def registrations_and_executions(registry) -> None:
    by_status = Gauge("ai_registry_registrations", "Model registrations (versions), by status.",
                      ["status"], registry=registry)
    counts = dict(Registration.objects.order_by().values_list("status")
                  .annotate(n=Count("pk")))
    for status in Registration.Status.values:
        by_status.labels(status).set(counts.get(status, 0))
    executions = Gauge("ai_registry_executions", "Model executions recorded.",
                       registry=registry)
    executions.set(total_executions())
