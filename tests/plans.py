"""What PostgreSQL would do with a query, for the tests that hold a lookup to its index."""
from django.db import connection


def index_plan(queryset) -> str:
    """The EXPLAIN of `queryset` with sequential scans off: the test tables are tiny, so this asks
    what an index can serve rather than what the planner would pick at this size."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())
