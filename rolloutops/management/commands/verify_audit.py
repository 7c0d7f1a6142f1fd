"""manage.py verify_audit: exit 0 when the audit hash chain is intact, 1 naming the first bad entry."""
import sys

from django.core.management.base import BaseCommand

from rolloutops.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain."

    def handle(self, *args, **options):
        report = audit_verify()
        if report.intact:
            self.stdout.write(self.style.SUCCESS(f"audit chain intact: {report.checked} entries verified"))
            return
        self.stderr.write(f"audit chain BROKEN at entry #{report.first_bad_id}: {report.problem} "
                          f"({report.checked} entries before it verified)")
        sys.exit(1)
