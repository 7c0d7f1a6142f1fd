"""Statements run past Django's cursor on PostgreSQL: a server-binding psycopg cursor on Django's own
connection (docs/scaling.md, "Prepared statements")."""
from __future__ import annotations

from django.db import connection


def server_binding_cursor():
    """A psycopg cursor on Django's connection, inside whatever transaction it is in, that binds
    parameters on the server.

    Django's psycopg cursors bind client-side: every value is quoted into the SQL text (for 18
    arrays of 1,000 values that costs more than the INSERT), and such a statement can never be
    prepared. This one sends the values apart from the text, so psycopg prepares a statement it
    runs repeatedly when the connection allows it (`prepare_threshold`, rolloutops/settings.py):
    the server then plans it once a connection instead of on every call. PostgreSQL only.
    """
    import psycopg  # here, not at the top: only PostgreSQL deployments load it

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def use_compiled_timestamptz_loader() -> bool:
    """Read `timestamptz` text with psycopg's compiled loader instead of Django's Python one.

    Django's PostgreSQL backend registers its own `timestamptz` loader, a Python subclass of
    psycopg's Python loader, so every date-time a query returns is parsed in Python (then given the
    connection's time zone) even where psycopg's C implementation is installed. Django keeps the
    session's time zone at UTC (USE_TZ, no `TIME_ZONE` in DATABASES), and psycopg's compiled loader
    then returns the same values, tz-aware in `datetime.timezone.utc`, at a tenth of the cost
    (docs/scaling.md, "Date-times read in C"). Registered on the adapters template of that one
    configuration only; any other (a DATABASES `TIME_ZONE`, USE_TZ off, no C implementation) keeps
    Django's loader. True when installed."""
    from datetime import datetime, timezone as tz

    from django.conf import settings

    if not settings.USE_TZ or connection.vendor != "postgresql" or connection.settings_dict.get("TIME_ZONE"):
        return False
    import psycopg
    from django.db.backends.postgresql.psycopg_any import get_adapters_template

    oid = psycopg.postgres.types["timestamptz"].oid
    compiled = psycopg.adapters.get_loader(oid, psycopg.pq.Format.TEXT)
    if compiled is None or not compiled.__module__.startswith(("psycopg_binary", "psycopg_c")):
        return False
    try:  # a psycopg whose compiled loader no longer works this way keeps Django's
        sample = compiled(oid, None).load(b"2000-01-02 03:04:05.06+01")
    except Exception:  # noqa: BLE001 - any failure here only means: not installed
        return False
    if sample != datetime(2000, 1, 2, 2, 4, 5, 60000, tzinfo=tz.utc) or sample.tzinfo is not tz.utc:
        return False

    class UtcTimestamptzLoader(psycopg.adapt.Loader):
        # A Python loader that hands each value to the compiled one (that class cannot be
        # subclassed); `timezone` is what Django's backend compares before registering its own.
        timezone = tz.utc

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            self.load = compiled(oid, context).load  # each value parsed in C, no Python frame between

        def load(self, data):  # replaced per instance above; declared for the abstract base
            raise NotImplementedError

    get_adapters_template(True, tz.utc).register_loader("timestamptz", UtcTimestamptzLoader)
    return True
