"""The search migration enables pg_trgm itself, and where PostgreSQL refuses
(a role that may not create extensions) it stops with a message saying what to do."""

import importlib
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import psycopg
import pytest
from django.db import connection

search_migration = importlib.import_module("chat.migrations.0005_search_index")


def _connect(dbname: str, user: str, password: str) -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"], port=s["PORT"], dbname=dbname, user=user, password=password, autocommit=True)


@pytest.fixture
def bare_database(committed) -> Iterator[tuple[str, str]]:
    """A new database without pg_trgm and a role that may connect but not create in it."""
    suffix = uuid.uuid4().hex[:10]
    name, role = f"noext_{suffix}", f"noext_{suffix}"
    s = connection.settings_dict
    with _connect(s["NAME"], s["USER"], s["PASSWORD"]) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw' NOSUPERUSER NOCREATEDB")
        admin.execute(f"REVOKE CREATE ON DATABASE {name} FROM PUBLIC")
        try:
            yield name, role
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def _editor(conn: psycopg.Connection) -> SimpleNamespace:
    """What the migration function uses of Django's schema editor: a connection with cursors."""
    return SimpleNamespace(connection=SimpleNamespace(cursor=conn.cursor))


def test_a_role_that_may_not_create_the_extension_gets_a_clear_message(bare_database):
    name, role = bare_database
    with _connect(name, role, "pw") as conn:
        with pytest.raises(RuntimeError) as info:
            search_migration._create_extension(None, _editor(conn))
        message = str(info.value)
        assert "pg_trgm" in message and "CREATE EXTENSION pg_trgm" in message
        assert "permission denied" in message  # PostgreSQL's own reason is kept
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() == (0,)


def test_a_superuser_gets_the_extension_enabled(bare_database):
    name, _ = bare_database
    s = connection.settings_dict
    with _connect(name, s["USER"], s["PASSWORD"]) as conn:
        search_migration._create_extension(None, _editor(conn))
        search_migration._create_extension(None, _editor(conn))  # a second run is a no-op
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() == (1,)
