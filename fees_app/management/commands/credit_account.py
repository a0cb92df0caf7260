from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from fees_app.services import account_credit
from registry_site.errors import DomainError
from registry_site.inputs import refusal_message


class Command(BaseCommand):
    help = "Credit a user's account (an operator top-up), recorded in the ledger and audit trail."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("amount", type=int)
        parser.add_argument("--reason", required=True)

    def handle(self, *args, username, amount, reason, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            entry = account_credit(user=user, amount=amount, reason=reason)
        except DomainError as exc:
            raise CommandError(refusal_message(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Credited {amount} to {username}; balance is now {entry.balance_after}."
        ))
