"""Prometheus metrics computed from the database at scrape time.

Figures come from the database rather than per-process counters, so every worker on every
host reports the same numbers and nothing needs a multiprocess collector.

This module is only the registry: each app owns a ``metrics.py`` that adds its gauges with
``@register_collector`` and imports it from its ``AppConfig.ready()``, so registry_site never
imports the apps that sit above it.
"""

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from registry_site.models import AuditEvent

Collector = Callable[[CollectorRegistry], None]

_collectors: list[Collector] = []


def register_collector(func: Collector) -> Collector:
    """Add ``func(registry)`` to every scrape; registering the same function twice is a no-op."""
    if func not in _collectors:
        _collectors.append(func)
    return func


def render_metrics() -> tuple[bytes, str]:
    registry = CollectorRegistry()
    for collect in _collectors:
        collect(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


@register_collector
def audit_events(registry: CollectorRegistry) -> None:
    gauge = Gauge("ai_registry_audit_events", "Audit events recorded.", registry=registry)
    gauge.set(AuditEvent.objects.count())
    unsealed = Gauge("ai_registry_audit_unsealed_events",
                     "Audit events committed but not sealed into the chain yet.",
                     registry=registry)
    unsealed.set(AuditEvent.objects.filter(seq__isnull=True).count())
