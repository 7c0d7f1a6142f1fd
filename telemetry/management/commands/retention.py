"""manage.py retention [--apply]: show (default) or apply the retention of raw events (telemetry/retention.py).
On PostgreSQL run it as the role that owns the tables (the one that runs `migrate`): it drops and
creates the event table's monthly partitions, which the application's role may not. Daily."""
from django.core.management.base import BaseCommand
from django.utils import timezone

from telemetry.retention import retention_apply, retention_plan


class Command(BaseCommand):
    help = ("Show what the retention of raw events (EVENT_RETENTION_DAYS) would remove; --apply removes it. "
            "Hourly rollups are kept.")

    def add_arguments(self, parser):
        parser.add_argument("--apply", action="store_true", help="delete what is shown (default: only show it)")

    def handle(self, *args, apply: bool = False, **options):
        now = timezone.now()
        plan = retention_plan(now=now)
        self.stdout.write(f"cutoff: events that occurred before {plan.cutoff.isoformat()}")
        self.stdout.write(f"raw events to remove: {plan.events:,}"
                          + (f" ({plan.waiting:,} more wait for the fold and are kept)" if plan.waiting else ""))
        self.stdout.write(f"discrepant pairs to remove: {plan.discrepant_pairs:,}")
        self.stdout.write("hourly rollups: kept")
        if not apply:
            self.stdout.write("nothing removed (dry run); run with --apply to remove it")
            return
        done = retention_apply(now=now)
        self.stdout.write(self.style.SUCCESS(
            f"removed {done.events:,} raw events and {done.discrepant_pairs:,} discrepant pairs in {done.seconds:.1f} s"))
