"""manage.py seed_demo: a realistic demo world (see console/demo_seed.py)."""
import time

from django.core.management.base import BaseCommand

from agents.models import Agent
from console.demo_seed import DEMO_PASSWORD, PEOPLE, seed_demo


class Command(BaseCommand):
    help = "Seed agents in every stage, a discrepant shadow run, a rolled-back canary and an escalation queue."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="seed even if agents already exist")

    def handle(self, *args, force=False, **options):
        if Agent.objects.exists() and not force:
            self.stdout.write("The database already has agents; nothing seeded (use --force to add the demo anyway).")
            return
        started = time.monotonic()
        counts = seed_demo(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(
            f"Seeded {counts['agents']} agents, {counts['rollouts']} rollouts, {counts['events_folded']} events, "
            f"{counts['tickets']} tickets in {time.monotonic() - started:.1f} s."))
        self.stdout.write("Sign in as " + ", ".join(f"{u} ({r})" for u, r in PEOPLE) + f" — password {DEMO_PASSWORD}")
