from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from governance_app.services import voting_power_grant
from registry_site.errors import DomainError


class Command(BaseCommand):
    help = ("Set a user's voting power from now on (a new checkpoint), recorded in the audit "
            "trail; earlier proposals keep the power their snapshot saw.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("power", type=int)
        parser.add_argument("--reason", default="Granted by an operator")

    def handle(self, *args, username, power, reason, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            checkpoint = voting_power_grant(user=user, power=power, reason=reason)
        except DomainError as exc:
            raise CommandError(f"{exc.detail} {exc.extra.get('fields', '')}".strip()) from None
        self.stdout.write(self.style.SUCCESS(
            f"{username} has voting power {checkpoint.power} from "
            f"{checkpoint.effective_from:%Y-%m-%d %H:%M:%S} UTC."
        ))
