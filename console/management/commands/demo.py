"""manage.py demo [--port 8000] [--no-seed] [--no-traffic]: the embedded demo in one command —
database, demo data, demo people, a Celery worker with beat, an agent runtime sending traffic
(examples/support_runtime.py on the client library), and the web server."""
import importlib.util
import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from console.demo_seed import DEMO_PASSWORD
from rolloutops.policy import Role

# One person per role when the demo starts without its data (--no-seed); seed_demo adds more.
DEMO_PEOPLE = (("olivia", Role.OPERATOR), ("rita", Role.REVIEWER), ("maya", Role.MANAGER))
WORKER_STOP_SECONDS = 20
# The demo's agents keep reporting, as a real runtime would: a live stage that hears nothing for
# ten minutes is paused as inconclusive (docs/decisions.md, "Silence is not health").
RUNTIME_RATE_PER_AGENT = 0.3


class Command(BaseCommand):
    help = "Run the demo on this machine: migrate, seed when empty, start a Celery worker with beat, serve the pages."
    requires_system_checks = []  # runserver runs them; migrate must come first on a fresh database

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-seed", action="store_true", help="do not load the demo data into an empty database")
        parser.add_argument("--no-traffic", action="store_true",
                            help="do not start the example agent runtime (the demo's live stages then go silent)")

    def handle(self, *args, port, no_seed, no_traffic, **options):
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        if not settings.STATIC_MANIFEST:
            # Static files as production serves them: collected under hashed names, gzipped, cached
            # for a year (WhiteNoise). Settings are read once, so the demo starts again with them.
            environment = {**os.environ, "STATIC_MANIFEST": "true"}
            environment.setdefault("STATIC_ROOT", str(settings.VAR_DIR / "static"))
            os.execve(sys.executable, [sys.executable, *sys.argv], environment)
        self.stdout.write("Collecting static files…")
        # The demo's own folder is emptied first, so a file an earlier version collected and this
        # one no longer serves (rolloutops/staticfiles.py) is not left behind for WhiteNoise.
        own = Path(settings.STATIC_ROOT) == settings.VAR_DIR / "static"
        call_command("collectstatic", interactive=False, verbosity=0, clear=own)
        self.stdout.write("Preparing the database…")
        call_command("migrate", interactive=False, verbosity=0)
        if not no_seed:
            self._seed()
        self._ensure_people()

        worker_log = settings.VAR_DIR / "celery-worker.log"
        worker = self._start_worker(worker_log)
        runtime = None if no_traffic else self._start_runtime(port)
        # SIGTERM (a process manager, `kill`) takes the same path as Ctrl-C: runserver exits and
        # the worker is stopped below, warm, so a task in progress finishes.
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            url = f"http://127.0.0.1:{port}/"
            self.stdout.write("")
            self.stdout.write(self.style.SUCCESS(f"rolloutops demo: open {url}"))
            self.stdout.write("Sign in as (password " + DEMO_PASSWORD + "):")
            for username, role in DEMO_PEOPLE:
                self.stdout.write(f"  {username:<7} {role}")
            self.stdout.write(f"Celery worker + beat (pid {worker.pid}) logs to {worker_log}")
            if runtime is not None:
                self.stdout.write(f"Agent runtime (examples/support_runtime.py, pid {runtime.pid}) logs to "
                                  f"{settings.VAR_DIR / 'support-runtime.log'}")
            self.stdout.write("Press Ctrl-C to stop.\n")
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=False, use_threading=True,
                         shutdown_message="Stopping…")
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            if runtime is not None:
                self._stop(runtime, "the agent runtime")
            self._stop_worker(worker)

    def _seed(self) -> None:
        if Agent.objects.exists():
            self.stdout.write("Demo data: the database already has agents, leaving it as it is.")
        elif "seed_demo" in get_commands():
            self.stdout.write("Loading the demo data (seed_demo)…")
            call_command("seed_demo")
        else:
            self.stdout.write(self.style.WARNING("No seed_demo command in this build: starting with an empty database."))

    def _ensure_people(self) -> None:
        User = get_user_model()
        for username, role in DEMO_PEOPLE:
            if not User.objects.filter(username=username).exists():
                call_command("adduser", username, "--role", role, "--password", DEMO_PASSWORD, stdout=StringIO())

    def _start_worker(self, log_path) -> subprocess.Popen:
        command = [sys.executable, "-m", "celery", "-A", "rolloutops", "worker", "-B", "--pool=threads",
                   "--concurrency=4", "--loglevel=INFO",
                   f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}"]
        log = open(log_path, "ab")
        # Its own session: a Ctrl-C in the terminal reaches only us, and we stop the worker once,
        # warm. Two signals would make Celery drop running tasks (cold shutdown).
        worker = subprocess.Popen(command, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        log.close()
        time.sleep(2)
        if worker.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-20:]
            raise CommandError("the Celery worker did not start:\n" + "\n".join(tail))
        return worker

    def _start_runtime(self, port: int) -> subprocess.Popen | None:
        """The example runtime, on the client library, with a day's token of olivia's: it routes
        each request through the routing snapshot, decides, reports and escalates like a real one."""
        script = settings.BASE_DIR / "examples" / "support_runtime.py"
        if importlib.util.find_spec("rolloutops_client") is None or not script.exists():
            self.stdout.write(self.style.WARNING(
                "No agent runtime: install the client (pip install ./client) for live demo traffic. "
                "Without it the demo's live stages pause as inconclusive after 10 minutes of silence."))
            return None
        from rolloutops.tokens import token_issue

        owner = get_user_model().objects.get(username="olivia")
        _, token = token_issue(user=owner, scopes="route:read,events:write,escalations:write", name="demo-runtime",
                               expires_in_days=1)
        log = open(settings.VAR_DIR / "support-runtime.log", "ab")
        runtime = subprocess.Popen(
            [sys.executable, str(script), "--url", f"http://127.0.0.1:{port}", "--all-agents",
             "--rate", str(RUNTIME_RATE_PER_AGENT), "--report-every", "300"],
            cwd=settings.BASE_DIR, env={**os.environ, "ROLLOUTOPS_TOKEN": token}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return runtime

    def _stop(self, process: subprocess.Popen, what: str) -> None:
        if process.poll() is not None:
            return
        self.stdout.write(f"Stopping {what}…")
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _stop_worker(self, worker: subprocess.Popen) -> None:
        if worker.poll() is not None:
            return
        self.stdout.write("Stopping the Celery worker…")
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        self.stdout.write("Stopped.")


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
