from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse

from accounts_app.demo import DEMO_USERS, seed_governance, seed_users
from models_app.demo import seed_models


class Command(BaseCommand):
    help = "Load demo users, models, proposals and fees once; running it again adds nothing."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true",
            help="Run even with DJANGO_DEBUG off (the demo users have known passwords).",
        )

    def handle(self, *args, force: bool = False, **options):
        # The demo makes a staff moderator with a published password and token holders with
        # backdated voting power: on a production database that is an open door.
        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to load demo data with DJANGO_DEBUG off: it creates a staff user "
                "with a known password and backdated voting power. Run it on a development "
                "database, or pass --force if this database really is a throwaway demo."
            )
        with transaction.atomic():
            users = seed_users()
            seed_models(users)
            proposals = seed_governance(users)
        self.stdout.write(self.style.SUCCESS(
            f"Demo data ready. Log in at {reverse('accounts:login')} with:"))
        for username, password, role, _, _ in DEMO_USERS:
            self.stdout.write(f"  {role:<13} {username:<10} password: {password}")
        self.stdout.write(f"Proposals at {reverse('governance:proposal-list')}:")
        for proposal in proposals:
            url = reverse("governance:proposal-detail", args=[proposal.pk])
            self.stdout.write(f"  {url}  {proposal.title}")
