"""Background jobs of registry_site: thin wrappers over services, safe to run twice."""

from celery import shared_task

from registry_site.audit import audit_seal


@shared_task(name="registry_site.tasks.seal_audit_log")
def seal_audit_log() -> str:
    """Seal committed audit events into the chain; a second sealer at once does nothing."""
    return str(audit_seal())
