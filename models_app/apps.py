from django.apps import AppConfig


def registry_metrics(registry) -> None:
    """Registrations by status and total executions, read from the database at scrape time."""
    from django.db.models import Count, Sum
    from prometheus_client import Gauge

    from models_app.models import Registration, UsageStats

    by_status = Gauge("ai_registry_registrations", "Model registrations (versions), by status.",
                      ["status"], registry=registry)
    counts = dict(Registration.objects.order_by().values_list("status")
                  .annotate(n=Count("pk")))
    for status in Registration.Status.values:
        by_status.labels(status).set(counts.get(status, 0))
    executions = Gauge("ai_registry_executions", "Model executions recorded.",
                       registry=registry)
    executions.set(UsageStats.objects.aggregate(n=Sum("total_executions"))["n"] or 0)


class ModelsAppConfig(AppConfig):
    name = "models_app"
    verbose_name = "Model registry"

    def ready(self):
        from registry_site.metrics import register_collector

        register_collector(registry_metrics)
