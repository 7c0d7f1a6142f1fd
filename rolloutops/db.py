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
