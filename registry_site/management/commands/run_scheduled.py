from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registry_site.celery import app


class Command(BaseCommand):
    help = ("Run every job of the beat schedule (CELERY_BEAT_SCHEDULE) once, now, in this "
            "process: what beat would start at this moment. For deployments without beat, "
            "and to trigger due work deterministically. Exits non-zero if a job failed.")

    def handle(self, *args, **options):
        app.loader.import_default_modules()  # autodiscovery: every app's tasks.py
        failed = []
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
            task = app.tasks[entry["task"]]
            # apply() runs the task here, whatever the broker; throw=False so one failure
            # does not stop the jobs after it.
            result = task.apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}),
                                throw=False)
            if result.failed():
                failed.append(name)
                self.stderr.write(self.style.ERROR(
                    f"{name} ({entry['task']}): failed: {result.result!r}"))
            else:
                self.stdout.write(f"{name} ({entry['task']}): {result.result}")
        if failed:
            raise CommandError(f"{len(failed)} scheduled job(s) failed: {', '.join(failed)}")
