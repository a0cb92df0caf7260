from django.core.management.base import BaseCommand, CommandError

from registry_site.errors import DomainError
from registry_site.parameters import PARAMETER_SPECS
from registry_site.services import parameter_set


class Command(BaseCommand):
    help = ("Operator override of a governable parameter, outside governance (e.g. "
            "voting_period_seconds 3600 for short votes in development). Recorded in the "
            "parameter's history and the audit trail; running proposals keep their deadlines.")

    def add_arguments(self, parser):
        parser.add_argument("name", choices=sorted(PARAMETER_SPECS))
        parser.add_argument("value", type=int)
        parser.add_argument("--reason", required=True)

    def handle(self, *args, name, value, reason, **options):
        try:
            parameter_set(name=name, value=value, actor=None, reason=f"Operator: {reason}")
        except DomainError as exc:
            raise CommandError(f"{exc.detail} {exc.extra.get('fields', '')}".strip()) from None
        self.stdout.write(self.style.SUCCESS(f"{name} = {value}"))
