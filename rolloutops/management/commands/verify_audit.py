"""manage.py verify_audit [--checkpoints FILE]…: exit 0 when the audit chain is intact and every
checkpoint (stored, in the checkpoint file, in the files given) vouches for it; 1 naming each problem."""
import sys
from datetime import timezone as dt_timezone
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from rolloutops.audit import audit_seal, audit_verify, chain_head
from rolloutops.audit_checkpoints import checkpoints_read


class Command(BaseCommand):
    help = "Seal pending audit entries, then verify the hash chain against its checkpoints."

    def add_arguments(self, parser):
        parser.add_argument("--checkpoints", action="append", default=[], metavar="FILE",
                            help="a file of JSON lines holding checkpoints (the checkpoint file, or the "
                                 "application's log); repeatable")
        parser.add_argument("--no-seal", action="store_true",
                            help="verify what is sealed without sealing pending entries first")

    def handle(self, *args, checkpoints, no_seal, **options):
        paths = [Path(p) for p in checkpoints]
        default = Path(settings.AUDIT_CHECKPOINT_FILE) if settings.AUDIT_CHECKPOINT_FILE else None
        if default and default.exists() and default not in paths:
            paths.append(default)
        given, unreadable = [], 0
        for path in paths:
            if not path.exists():
                raise CommandError(f"no checkpoint file at {path}")
            found, bad = checkpoints_read(path)
            given += found
            unreadable += bad
        sealed = 0 if no_seal else audit_seal()
        report = audit_verify(checkpoints=given)
        if unreadable:
            self.stderr.write(f"warning: {unreadable} checkpoint line(s) could not be read")
        if not report.intact:
            for problem in report.problems:
                self.stderr.write(f"audit chain BROKEN: {problem.message}")
            self.stderr.write(f"({report.checked} entries verified before the first problem in the chain, "
                              f"{report.checkpoints_checked} checkpoints checked)")
            sys.exit(1)
        length = chain_head()[0]
        newest = report.newest_checkpoint
        anchored = (f"; newest checkpoint {newest.at.astimezone(dt_timezone.utc):%Y-%m-%d %H:%M:%S} UTC vouches for {newest.seq}, "
                    f"{length - newest.seq} entries since are not yet anchored") if newest else "; no checkpoint yet"
        self.stdout.write(self.style.SUCCESS(
            f"audit chain intact: {report.checked} entries verified ({sealed} sealed just now), "
            f"{report.checkpoints_checked} checkpoints checked{anchored}"))
        if report.unsealed:
            self.stdout.write(f"{report.unsealed} entries are still waiting to be sealed")
