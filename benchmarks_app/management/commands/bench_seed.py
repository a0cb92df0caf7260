"""Seed the configured (bench) database for ``manage.py bench``; ``make bench`` calls it."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from benchmarks_app.seed import SEED_VERSION, Seeder, ensure_open_proposals
from models_app.models import Registration


def seed_marker(models: int) -> str:
    return f"ai-registry bench seed v{SEED_VERSION}: {models} models"


def refusal(vendor: str, name: str) -> str | None:
    """Why this database must not be seeded, or None when it may."""
    if vendor != "postgresql":
        return (f"The benchmark seeds PostgreSQL only; the configured database is {vendor} "
                f"({name}). Run it with make bench, which makes its own database.")
    if "bench" not in name:
        return (f"Refusing to seed the database {name!r}: the benchmark writes test data in "
                f"bulk, so it runs only on a database whose name contains 'bench' "
                f"(make bench makes ai_registry_bench_<N>).")
    return None


def read_marker() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                       "WHERE datname = current_database()")
        return cursor.fetchone()[0] or ""


class Command(BaseCommand):
    help = ("Fill the configured *bench* PostgreSQL database with --models models (bulk), "
            "unless it already holds that seed; then top up the open proposals for votes.")

    def add_arguments(self, parser):
        parser.add_argument("--models", type=int, required=True)
        parser.add_argument("--open-proposals", type=int, default=0,
                            help="Open, unvoted proposals to have for the vote scenario.")

    def handle(self, *args, models, open_proposals, **options):
        reason = refusal(connection.vendor, str(connection.settings_dict["NAME"]))
        if reason:
            raise CommandError(reason)
        if models < 1:
            raise CommandError("--models must be at least 1.")
        marker = seed_marker(models)
        if read_marker() == marker:
            self.stdout.write(f"Seed: {models} models already there, reused.")
        else:
            if Registration.objects.exists():
                raise CommandError(
                    f"The database {connection.settings_dict['NAME']} holds registrations but "
                    f"not a complete seed of {models} models; drop it (dropdb) and run again.")
            self.stdout.write(f"Seed: {models} models ...")
            Seeder(models, out=self.stdout._out).run()
            with connection.cursor() as cursor:
                name = connection.ops.quote_name(connection.settings_dict["NAME"])
                cursor.execute(f"COMMENT ON DATABASE {name} IS %s", [marker])
            self.stdout.write("Seed: done.")
        if open_proposals:
            ensure_open_proposals(open_proposals)
