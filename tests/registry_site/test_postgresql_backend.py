"""registry_site.postgresql: the health check before a request's first query runs only after
the connection sat idle, and a connection the server dropped in between is replaced."""

import time

import pytest
from django.db import DEFAULT_DB_ALIAS, OperationalError, ProgrammingError, connection, connections

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def wrapper():
    """A connection of its own (the test's is inside the test's transaction), its checks
    counted."""
    own = connections.create_connection(DEFAULT_DB_ALIAS)
    checks = []
    usable = own.is_usable
    own.is_usable = lambda: checks.append(1) or usable()
    own.checks = checks
    yield own
    own.close()


def serve(wrapper, sql="SELECT 1 + 1"):
    """One request as Django runs it: the connection is looked at before and after."""
    wrapper.close_if_unusable_or_obsolete()  # request_started
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]
    finally:
        wrapper.close_if_unusable_or_obsolete()  # request_finished


def test_the_settings_choose_the_backend():
    assert connection.settings_dict["ENGINE"] == "registry_site.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_connection_that_served_a_moment_ago_is_not_checked(wrapper):
    assert serve(wrapper) == 2  # opened here: nothing to check
    assert serve(wrapper) == 2
    assert serve(wrapper) == 2
    assert wrapper.checks == []


def test_a_connection_idle_for_longer_is_checked_before_its_next_query(wrapper):
    serve(wrapper)
    wrapper.healthy_at -= wrapper.idle_check_seconds + 0.1
    serve(wrapper)
    assert wrapper.checks == [1]
    serve(wrapper)
    assert wrapper.checks == [1]  # and then trusted again


def test_no_idle_allowance_checks_before_every_request(wrapper):
    wrapper.idle_check_seconds = 0
    for _ in range(3):
        serve(wrapper)
    assert wrapper.checks == [1, 1]


def test_a_request_that_fails_is_not_counted_as_healthy(wrapper):
    serve(wrapper)
    with pytest.raises(ProgrammingError):
        serve(wrapper, "SELECT no_such_column")
    # The failed request's connection was checked at its end and works; it served again.
    assert wrapper.checks == [1]
    assert serve(wrapper) == 2


def dropped_by_the_server(wrapper) -> int:
    """Serve a request, then have the server end that connection; its backend's pid."""
    serve(wrapper)
    pid = wrapper.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)
    return pid


def test_a_connection_dropped_by_the_server_fails_one_request_and_is_replaced(wrapper):
    pid = dropped_by_the_server(wrapper)
    # Within the idle allowance the dropped connection is not checked first: this request
    # meets the error (the API answers it with 503), and the connection is closed at its end.
    with pytest.raises(OperationalError):
        serve(wrapper)
    assert wrapper.connection is None
    assert serve(wrapper) == 2
    assert wrapper.connection.info.backend_pid != pid


def test_after_idle_a_dropped_connection_is_replaced_before_the_request(wrapper):
    pid = dropped_by_the_server(wrapper)
    wrapper.healthy_at -= wrapper.idle_check_seconds + 0.1
    assert serve(wrapper) == 2  # checked, found dead, reconnected: the request never knew
    assert wrapper.connection.info.backend_pid != pid
