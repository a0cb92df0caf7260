from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from governance_app.services import voting_power_grant
from registry_site.errors import DomainError
from registry_site.inputs import refusal_message


class Command(BaseCommand):
    help = ("Set a user's voting power from now on (a new checkpoint), recorded in the audit "
            "trail with the granting account (--actor); earlier proposals keep the power "
            "their snapshot saw. Nobody may grant power to themselves.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("power", type=int)
        # Required: a grant always names who made it, so the self-grant rule holds here as
        # in the admin, and the audit trail says who moved the votes.
        parser.add_argument("--actor", required=True,
                            help="Your own account: the moderator or operator granting.")
        parser.add_argument("--reason", default="Granted by an operator")

    def handle(self, *args, username, power, actor, reason, **options):
        users = get_user_model().objects
        user = users.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        granter = users.filter(username=actor).first()
        if granter is None:
            raise CommandError(f"No user named {actor!r} (--actor).")
        try:
            checkpoint = voting_power_grant(user=user, power=power, actor=granter,
                                            reason=reason)
        except DomainError as exc:
            raise CommandError(refusal_message(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"{username} has voting power {checkpoint.power} from "
            f"{checkpoint.effective_from:%Y-%m-%d %H:%M:%S} UTC (granted by {actor})."
        ))
