"""Date-times read from PostgreSQL: parsed by psycopg's compiled loader (rolloutops/db.py), and
every value the same as Django's own Python loader gives: the instant, in datetime.timezone.utc,
and the same errors for what Python cannot hold."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import DataError, connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader

from rolloutops.db import server_binding_cursor, use_compiled_timestamptz_loader
from rolloutops.models import AuditEntry

pytestmark = pytest.mark.django_db

LITERALS = [
    "2026-11-29 22:16:05.123456+00",
    "2026-11-29 22:16:05+00",
    "2026-03-29 01:30:00.5+02",        # a daylight-saving morning, given with its offset
    "2026-11-29 10:00:00.000001-09:30",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "2024-02-29 23:59:59.999999+14",
]


def _django_loader_reads(literal: str):
    """What Django's own loader gives for `literal` (registered on one cursor only)."""
    class DjangoUtc(BaseTzLoader):
        timezone = timezone.utc

    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("timestamptz", DjangoUtc)
        cursor.execute(f"SELECT '{literal}'::timestamptz")
        return cursor.fetchone()[0]


def _needs_compiled_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite's date-times are Django's own converters")
    if psycopg.pq.__impl__ == "python":
        pytest.skip("psycopg without its C implementation keeps Django's loader")


def test_the_compiled_loader_is_the_connections():
    _needs_compiled_postgresql()
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, psycopg.pq.Format.TEXT)
    assert loader.__name__ == "UtcTimestamptzLoader"
    assert loader.timezone is timezone.utc  # so Django registers no loader of its own per cursor
    with connection.cursor() as cursor:
        assert cursor.cursor.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, psycopg.pq.Format.TEXT) is loader


@pytest.mark.parametrize("literal", LITERALS)
def test_every_value_is_what_djangos_loader_reads(literal):
    _needs_compiled_postgresql()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT '{literal}'::timestamptz")
        value = cursor.fetchone()[0]
    expected = _django_loader_reads(literal)
    assert value == expected and value.tzinfo is timezone.utc and expected.tzinfo is timezone.utc
    assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize("literal", ["infinity", "-infinity", "4713-01-01 00:00:00+00 BC"])
def test_what_python_cannot_hold_is_the_same_error(literal):
    _needs_compiled_postgresql()
    with pytest.raises(DataError) as ours:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT '{literal}'::timestamptz")
            cursor.fetchone()
    with pytest.raises(DataError) as djangos:
        _django_loader_reads(literal)
    assert str(ours.value) == str(djangos.value)


def test_a_saved_instant_reads_back_the_same_through_the_orm_and_a_server_binding_cursor(operator):
    _needs_compiled_postgresql()
    at = datetime(2026, 10, 25, 4, 30, 15, 654321, tzinfo=ZoneInfo("Europe/Berlin"))  # the day clocks go back
    entry = AuditEntry.objects.create(at=at, actor=operator, actor_label=operator.username, action="test.loader",
                                      object_type="test", object_id="1", object_repr="x", before={}, after={})
    read = AuditEntry.objects.values_list("at", flat=True).get(pk=entry.pk)
    assert read == at and read.tzinfo is timezone.utc and read.hour == 3
    with server_binding_cursor() as cursor:
        cursor.execute("SELECT at FROM rolloutops_auditentry WHERE id = %s", [entry.pk])
        assert cursor.fetchone()[0] == at


def test_sqlite_keeps_djangos_converters():
    if connection.vendor == "postgresql":
        pytest.skip("SQLite only")
    assert use_compiled_timestamptz_loader() is False
