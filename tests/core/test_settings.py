"""Settings from the environment: production passes check --deploy, bad or missing values refuse to start."""
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Everything the settings read; each test starts from none of them, then sets its own.
SETTINGS_ENV = ("DATABASE_URL", "SECRET_KEY", "AUDIT_CHECKPOINT_KEY", "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "CELERY_BROKER_URL",
                "CACHE_URL", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
                "SECURE_HSTS_SECONDS", "STATIC_MANIFEST", "SQLITE_TEST_NAME", "DJANGO_ALLOW_ASYNC_UNSAFE",
                "DB_TRANSACTION_POOLING", "DB_PREPARE_THRESHOLD", "GC_FREEZE")


def manage(*args, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV and not k.startswith("PYTEST")}
    clean.update({"ROLLOUTOPS_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "rolloutops.settings"})
    clean.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True,
                          text=True, timeout=120)


def random_secret(n=50) -> str:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    return "".join(secrets.choice(alphabet) for _ in range(n))


PRODUCTION = {"DEBUG": "false", "ALLOWED_HOSTS": "rolloutops.example"}


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path, env={
        **PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "SECRET_KEY": random_secret(),
        "AUDIT_CHECKPOINT_KEY": random_secret(),
    })
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_check_deploy_warns_when_the_audit_key_is_missing(tmp_path):
    result = manage("check", "--deploy", tmp_path=tmp_path, env={
        **PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "SECRET_KEY": random_secret(),
    })
    assert "rolloutops.W001" in result.stderr + result.stdout
    assert "AUDIT_CHECKPOINT_KEY is not set" in result.stderr + result.stdout


def test_production_without_secret_key_refuses_to_start(tmp_path):
    result = manage("check", tmp_path=tmp_path, env={
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "DEBUG": "false", "ALLOWED_HOSTS": "rolloutops.example",
    })
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is required" in result.stderr


def test_a_boolean_that_is_not_one_refuses_to_start(tmp_path):
    result = manage("check", tmp_path=tmp_path, env={"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DEBUG must be a boolean" in result.stderr


def test_a_bad_integer_refuses_to_start(tmp_path):
    result = manage("check", tmp_path=tmp_path, env={"SECURE_HSTS_SECONDS": "a year"})
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS must be an integer" in result.stderr


def test_embedded_default_runs_without_any_configuration(tmp_path):
    # No DATABASE_URL: SQLite in the project folder, the folder broker, no SECRET_KEY needed.
    result = manage("shell", "-c", "from django.conf import settings as s; "
                    "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG, "
                    "s.DATABASES['default']['OPTIONS']['transaction_mode'])", tmp_path=tmp_path, env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["django.db.backends.sqlite3", "filesystem://", "False", "IMMEDIATE"]


def test_sqlite_connection_uses_wal_and_a_busy_timeout(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite pragmas")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 30000


def test_debug_with_a_database_url_still_requires_secret_key(tmp_path):
    # DEBUG on a shared database is still a deployment: no key that anyone could know.
    result = manage("check", tmp_path=tmp_path, env={
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "DEBUG": "true",
    })
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_embedded_set_up_generates_a_random_key_once_and_keeps_it(tmp_path):
    show = "from django.conf import settings as s; print(s.SECRET_KEY)"
    keys = []
    for debug in ("false", "true", "false"):
        result = manage("shell", "-c", show, tmp_path=tmp_path, env={"DEBUG": debug})
        assert result.returncode == 0, result.stderr
        keys.append(result.stdout.strip().splitlines()[-1])
    key_file = tmp_path / "var" / "secret_key"
    assert keys[0] == keys[1] == keys[2] == key_file.read_text().strip()
    assert len(keys[0]) >= 50
    assert "insecure" not in keys[0]
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only

    # Another project folder (another var/) gets another key: nothing is fixed in the code.
    other = tmp_path / "other"
    other.mkdir()
    result = manage("shell", "-c", show, tmp_path=other, env={})
    assert result.stdout.strip().splitlines()[-1] != keys[0]


def test_an_explicit_secret_key_wins_and_nothing_is_written(tmp_path):
    result = manage("shell", "-c", "from django.conf import settings as s; print(s.SECRET_KEY)",
                    tmp_path=tmp_path, env={"SECRET_KEY": "from-the-environment-" + "x" * 40})
    assert result.stdout.strip().splitlines()[-1] == "from-the-environment-" + "x" * 40
    assert not (tmp_path / "var" / "secret_key").exists()


@pytest.mark.parametrize(("env", "threshold"), [
    ({}, 5),                                                            # straight to PostgreSQL: prepare
    ({"DB_TRANSACTION_POOLING": "true"}, None),                         # a pooler may not keep them
    ({"DB_TRANSACTION_POOLING": "true", "DB_PREPARE_THRESHOLD": "0"}, 0),  # PgBouncer >= 1.21, said so
    ({"DB_PREPARE_THRESHOLD": "off"}, None),
    ({"DB_PREPARE_THRESHOLD": "2"}, 2),
])
def test_prepared_statements_follow_the_pooling_setting(monkeypatch, env, threshold):
    from rolloutops.settings import _prepare_threshold

    monkeypatch.delenv("DB_PREPARE_THRESHOLD", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _prepare_threshold(env.get("DB_TRANSACTION_POOLING") == "true") == threshold


@pytest.mark.parametrize("raw", ["-1", "soon"])
def test_a_bad_prepare_threshold_refuses_to_start(monkeypatch, raw):
    from django.core.exceptions import ImproperlyConfigured

    from rolloutops.settings import _prepare_threshold

    monkeypatch.setenv("DB_PREPARE_THRESHOLD", raw)
    with pytest.raises(ImproperlyConfigured, match="DB_PREPARE_THRESHOLD"):
        _prepare_threshold(False)


def test_postgresql_connections_get_the_threshold_and_sqlite_none(tmp_path):
    show = "from django.conf import settings as s; print(s.DATABASES['default']['OPTIONS'].get('prepare_threshold', '-'))"
    postgres = manage("shell", "-c", show, tmp_path=tmp_path, env={
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "SECRET_KEY": random_secret(),
        "DB_TRANSACTION_POOLING": "true", "DB_PREPARE_THRESHOLD": "3"})
    assert postgres.returncode == 0, postgres.stderr
    assert postgres.stdout.strip().splitlines()[-1] == "3"
    sqlite = manage("shell", "-c", show, tmp_path=tmp_path, env={})
    assert sqlite.stdout.strip().splitlines()[-1] == "-"
