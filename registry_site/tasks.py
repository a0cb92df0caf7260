"""Background jobs of registry_site: thin wrappers over services, safe to run twice."""

from celery import shared_task

from registry_site.audit import audit_seal
from registry_site.idempotency import idempotency_keys_purge


@shared_task(name="registry_site.tasks.seal_audit_log")
def seal_audit_log() -> str:
    """Seal committed audit events into the chain; a second sealer at once does nothing."""
    return str(audit_seal())


@shared_task(name="registry_site.tasks.purge_idempotency_keys")
def purge_idempotency_keys() -> str:
    """Delete the Idempotency-Key answers that have expired."""
    return f"{idempotency_keys_purge()} expired"
