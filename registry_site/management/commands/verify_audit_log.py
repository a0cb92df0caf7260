from django.core.management.base import BaseCommand, CommandError

from registry_site.audit import audit_verify


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; exit non-zero naming the first bad row."

    def handle(self, *args, **options):
        checked, problem = audit_verify()
        if problem:
            raise CommandError(f"Audit log is broken after {checked} good events: {problem}")
        self.stdout.write(self.style.SUCCESS(f"Audit log intact: {checked} events verified."))
