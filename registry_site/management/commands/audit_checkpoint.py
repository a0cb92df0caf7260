import json

from django.core.management.base import BaseCommand, CommandError

from registry_site.audit import CheckpointError, checkpoint_create


class Command(BaseCommand):
    help = ("Verify the audit log, then print and store a checkpoint of its newest event signed "
            "with AUDIT_CHECKPOINT_KEY. Keep the printed JSON outside the database; "
            "verify_audit_log --checkpoint FILE checks the log against it later.")

    def handle(self, *args, **options):
        try:
            body = checkpoint_create()
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(body, indent=2))
