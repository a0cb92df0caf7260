from django.core.management.base import BaseCommand
from django.db import transaction

from governance_app.demo import DEMO_USERS, seed_governance, seed_users
from models_app.demo import seed_models


class Command(BaseCommand):
    help = "Load demo users, models, proposals and fees once; running it again adds nothing."

    def handle(self, *args, **options):
        with transaction.atomic():
            users = seed_users()
            seed_models(users)
            proposals = seed_governance(users)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in at /accounts/login/ with:"))
        for username, password, role, _, _ in DEMO_USERS:
            self.stdout.write(f"  {role:<13} {username:<10} password: {password}")
        self.stdout.write("Proposals at /proposals/:")
        for proposal in proposals:
            self.stdout.write(f"  /proposals/{proposal.pk}/  {proposal.title}")
