"""Shared fixtures.

Integration and e2e tests commit for real (a daphne process must see the data),
so they use `committed` rather than pytest-django's `transactional_db`: its flush
TRUNCATEs every table, which the event log refuses by design. Data they create is
uniquely named and stays in the test database until the session drops it.
"""

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.factories import UserFactory
from tests.support.servers import Daphne, server_env, serving


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker) -> Iterator[None]:
    """Always create the test database, even when no collected test asks for `db`:
    pytest-django would otherwise leave `committed` tests on the real database."""
    import redis
    from django.test.utils import setup_databases, teardown_databases

    # The new test database numbers its users and rooms from 1 again, and Redis keys
    # name them by id (revocation proofs, presence, rate windows): a previous run's
    # keys would speak for this run's users. `make test` gives the tests a Redis
    # database of their own (1), so it starts empty.
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        # A server or worker killed mid-test may leave a session behind; it must
        # not keep the test database from being dropped.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()
        # Django's pool keeps its connections to the test database open.
        connection.close_pool()
        teardown_databases(config, verbosity=0)


@pytest.fixture
def committed(django_db_setup, django_db_blocker) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


@pytest.fixture
def make_user(committed):
    """A committed user and its session cookie: `user, cookie = make_user()`."""

    def make(**kwargs):
        user = UserFactory(**kwargs)
        return user, session_cookie(user)

    return make


@pytest.fixture(scope="session")
def db_settings(django_db_setup) -> dict:
    return settings.DATABASES["default"]


@pytest.fixture(scope="session")
def server(db_settings) -> Iterator[Daphne]:
    """One real daphne for the session (rate limit lifted; tests that need it start their own)."""
    with serving(server_env(db_settings)) as daphne:
        yield daphne


@pytest.fixture(scope="module")
def module_server(db_settings) -> Iterator[Daphne]:
    """A daphne for one test module alone, so its log holds only that module's output."""
    with serving(server_env(db_settings)) as daphne:
        yield daphne


@pytest.fixture
def no_traceback(module_server) -> Iterator[None]:
    """After the test, module_server logged no traceback and no error while it ran."""
    start = module_server.log_size()
    yield
    written = module_server.log_since(start)
    assert "Traceback" not in written and " ERROR " not in written, written[-3000:]


@pytest.fixture
def start_server(db_settings) -> Iterator:
    """Start extra daphne processes with env overrides (and extra daphne options as
    positional arguments); all stopped after the test."""
    started: list[Daphne] = []

    def start(*args: str, **overrides: str) -> Daphne:
        daphne = Daphne(env=server_env(db_settings, **overrides), args=args).start()
        started.append(daphne)
        return daphne

    yield start
    for daphne in started:
        daphne.stop()
