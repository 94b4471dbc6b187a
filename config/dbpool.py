"""The borrow-time check of pooled PostgreSQL connections, without a round trip.

An idle connection has nothing to read. When its socket is readable the server
closed it (a restart, a failover, a proxy cut) or sent something unasked: only
then is it tested with a query, and replaced by the pool if that fails. A
healthy connection costs one poll() instead of a `SELECT` per borrow.
"""

import select

from psycopg import Connection, OperationalError
from psycopg_pool import ConnectionPool


def check_connection(conn: Connection) -> None:
    if conn.closed:
        raise OperationalError("the connection is closed")
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)
