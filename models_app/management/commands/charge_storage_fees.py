import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from models_app.services import storage_fees_charge


class Command(BaseCommand):
    help = ("Charge every approved model version its storage fee for one day (default: "
            "today, UTC). Each version is charged at most once per day, so a second run "
            "charges nothing; owners who cannot pay are recorded as unpaid and listed.")

    def add_arguments(self, parser):
        parser.add_argument("--date", help="The day to charge, YYYY-MM-DD (default: today).")

    def handle(self, *args, **options):
        if options["date"]:
            try:
                day = datetime.date.fromisoformat(options["date"])
            except ValueError:
                raise CommandError(
                    f"--date must be a day as YYYY-MM-DD, got {options['date']!r}."
                ) from None
        else:
            day = timezone.localdate()
        run = storage_fees_charge(day=day)
        self.stdout.write(f"Storage fees for {day.isoformat()}:")
        self.stdout.write(f"  charged now:      {run.charged} version(s), {run.amount} in total")
        self.stdout.write(f"  already charged:  {run.already_charged} version(s) before this run")
        self.stdout.write(f"  unpaid:           {len(run.unpaid)} version(s)")
        for charge in run.unpaid:
            registration = charge.registration
            self.stdout.write(self.style.WARNING(
                f"    {registration.name} {registration.version}: owner "
                f"{registration.owner.username} could not pay {charge.amount}"
            ))
