from django.core.management.base import BaseCommand
from django.db import transaction

from governance_app.demo import DEMO_USERS, seed_users


class Command(BaseCommand):
    help = "Load demo users, models, proposals and fees once; running it again adds nothing."

    def handle(self, *args, **options):
        with transaction.atomic():
            seed_users()
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in at /accounts/login/ with:"))
        for username, password, role, _, _ in DEMO_USERS:
            self.stdout.write(f"  {role:<13} {username:<10} password: {password}")
