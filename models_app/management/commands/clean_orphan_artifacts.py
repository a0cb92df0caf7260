from django.core.management.base import BaseCommand, CommandError

from models_app.artifacts import ORPHAN_AGE_SECONDS, artifact_orphans_clean


class Command(BaseCommand):
    help = ("Delete files under artifacts/ in artifact storage that no artifact row references "
            "(left by uploads whose worker was killed) and that are older than --older-than "
            "seconds (default: one hour, so uploads still committing are left alone).")

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=ORPHAN_AGE_SECONDS,
                            metavar="SECONDS", help="Minimum age of a file to delete.")
        parser.add_argument("--dry-run", action="store_true",
                            help="List the orphan files without deleting them.")

    def handle(self, *args, **options):
        if options["older_than"] < 0:
            raise CommandError("--older-than must be zero or more seconds.")
        removed = artifact_orphans_clean(older_than=options["older_than"],
                                         dry_run=options["dry_run"])
        verb = "Would delete" if options["dry_run"] else "Deleted"
        for name in removed:
            self.stdout.write(f"  {name}")
        self.stdout.write(f"{verb} {len(removed)} orphan artifact file(s).")
