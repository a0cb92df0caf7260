from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from registry_site.audit import CheckpointError, audit_report, checkpoint_key, checkpoint_read


class Command(BaseCommand):
    help = ("Check every row of the audit trail's hash chain, the chain head and the signed "
            "checkpoints; exit non-zero naming every row that is altered or not on the chain. "
            "Events not sealed yet are counted apart; unsealed for longer than "
            "--max-unsealed-age is a failure of its own (the sealer is not running).")

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint", action="append", default=[], metavar="FILE",
            help="A checkpoint file printed by audit_checkpoint: prove that the log still "
                 "holds that event with that hash (needs AUDIT_CHECKPOINT_KEY). Repeatable.",
        )

        parser.add_argument(
            "--max-unsealed-age", type=float, default=60.0, metavar="SECONDS",
            help="Fail if an event has waited longer than this to be sealed (default 60).",
        )

    def handle(self, *args, **options):
        checkpoints = []
        if options["checkpoint"]:
            try:
                checkpoint_key()
            except CheckpointError as exc:
                raise CommandError(f"Cannot check a checkpoint: {exc}") from None
        for name in options["checkpoint"]:
            try:
                text = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"Cannot read the checkpoint file {name}: {exc}") from None
            try:
                checkpoints.append(checkpoint_read(text))
            except CheckpointError as exc:
                raise CommandError(f"The checkpoint file {name} is not valid: {exc}") from None
        report = audit_report(checkpoints=checkpoints)
        age = report.unsealed_age()
        unsealed = (f"{report.unsealed} event(s) not sealed yet, the oldest for {age:.0f} s"
                    if report.unsealed else "")
        if not report.ok:
            lines = "\n".join(f"  {problem}" for problem in report.problems)
            also = f"\nApart from those, {unsealed}." if unsealed else ""
            raise CommandError(
                f"Audit log is broken ({report.checked} events read, "
                f"{len(report.problems)} problem(s)):\n{lines}{also}"
            )
        if report.unsealed and age > options["max_unsealed_age"]:
            raise CommandError(
                f"Audit log not sealed: {unsealed} (more than {options['max_unsealed_age']:g} "
                f"s). The {report.checked} sealed events are intact, but nothing proves the "
                "rest: is the sealer running (make worker, celery beat, or manage.py "
                "run_scheduled)?"
            )
        signed = f", {len(checkpoints)} checkpoint(s) matched" if checkpoints else ""
        pending = f"; {unsealed}" if unsealed else ""
        self.stdout.write(self.style.SUCCESS(
            f"Audit log intact: {report.checked} events verified{signed}{pending}."))
