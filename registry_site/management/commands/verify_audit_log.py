from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from registry_site.audit import CheckpointError, audit_report, checkpoint_key, checkpoint_read


class Command(BaseCommand):
    help = ("Check every row of the audit trail's hash chain, the chain head and the signed "
            "checkpoints; exit non-zero naming every row that is altered or not on the chain.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint", action="append", default=[], metavar="FILE",
            help="A checkpoint file printed by audit_checkpoint: prove that the log still "
                 "holds that event with that hash (needs AUDIT_CHECKPOINT_KEY). Repeatable.",
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
        if not report.ok:
            lines = "\n".join(f"  {problem}" for problem in report.problems)
            raise CommandError(
                f"Audit log is broken ({report.checked} events read, "
                f"{len(report.problems)} problem(s)):\n{lines}"
            )
        signed = f", {len(checkpoints)} checkpoint(s) matched" if checkpoints else ""
        self.stdout.write(self.style.SUCCESS(
            f"Audit log intact: {report.checked} events verified{signed}."))
