"""Governable parameters: defaults, the cached accessor, the one service and the API list."""

import pytest
import redis.exceptions
from django.core.cache import cache, caches

from registry_site.errors import InvalidInput
from registry_site.models import AuditEvent, Parameter, ParameterChange
from registry_site.parameters import CACHE_TIMEOUT, PARAMETER_SPECS, cache_key, get_parameter
from registry_site.services import parameter_set

pytestmark = pytest.mark.django_db

NAMES = {"voting_period_seconds", "execution_period_seconds", "min_voting_power",
         "max_model_size", "max_parameter_count", "quorum_bps", "registrations_paused"}


def test_the_seven_parameters_exist_with_their_defaults():
    assert set(PARAMETER_SPECS) == NAMES
    stored = dict(Parameter.objects.values_list("name", "value"))
    assert stored == {name: spec.default for name, spec in PARAMETER_SPECS.items()}
    for spec in PARAMETER_SPECS.values():
        assert spec.minimum <= spec.default <= spec.maximum
        assert spec.description


def test_get_parameter_reads_the_default_and_caches_it(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert get_parameter("quorum_bps") == 400
    with django_assert_num_queries(0):
        assert get_parameter("quorum_bps") == 400
    assert cache.get(cache_key("quorum_bps")) == 400


def test_get_parameter_falls_back_to_the_spec_default_without_a_row():
    Parameter.objects.filter(name="quorum_bps").delete()
    assert get_parameter("quorum_bps") == 400


def test_get_parameter_caches_zero():
    assert get_parameter("registrations_paused") == 0
    assert cache.get(cache_key("registrations_paused")) == 0


def test_get_parameter_unknown_name_is_a_programming_error():
    with pytest.raises(KeyError):
        get_parameter("nope")


def test_a_reader_that_raced_a_change_does_not_cache_the_old_value(
        django_capture_on_commit_callbacks):
    # Reader and writer interleave: the reader read the old row, then the change commits and
    # caches its value, then the reader stores what it read. The new value must survive.
    with django_capture_on_commit_callbacks(execute=True):
        parameter_set(name="quorum_bps", value=900)
    assert cache.get(cache_key("quorum_bps")) == 900
    Parameter.objects.filter(name="quorum_bps").update(value=400)  # what the reader saw
    assert get_parameter("quorum_bps") == 900
    cache.delete(cache_key("quorum_bps"))
    assert get_parameter("quorum_bps") == 400


def test_parameter_set_records_history_audit_and_busts_the_cache(
        moderator, django_capture_on_commit_callbacks):
    assert get_parameter("quorum_bps") == 400
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        parameter = parameter_set(name="quorum_bps", value=2500, actor=moderator,
                                  proposal_id=12, reason="more quorum")
    assert len(callbacks) == 1
    assert parameter.value == 2500
    assert get_parameter("quorum_bps") == 2500
    change = ParameterChange.objects.get()
    assert (change.old_value, change.new_value, change.actor, change.proposal_id,
            change.reason) == (400, 2500, moderator, 12, "more quorum")
    event = AuditEvent.objects.get(action="parameter.changed")
    assert event.details == {"name": "quorum_bps", "old": 400, "new": 2500, "proposal_id": 12,
                             "reason": "more quorum"}
    assert event.actor == moderator


def test_the_cache_is_busted_only_after_commit():
    assert get_parameter("quorum_bps") == 400
    # Inside the test transaction the on-commit callback has not run: the new value, which
    # could still roll back, is not in the cache, and readers on other connections read the
    # committed row instead of the cached one.
    parameter_set(name="quorum_bps", value=500)
    assert cache.get(cache_key("quorum_bps")) == "changing"


def _redis_fails_when_the_value_is_published(monkeypatch):
    """The strict client's set raises for the published value (the pre-commit marker goes
    through): Redis stopped between the transaction's check and its commit."""
    backend = caches["default"]
    strict = getattr(backend, "strict", backend)
    real_set = strict.set

    def set_or_fail(key, value, *args, **kwargs):
        if value != "changing":
            raise redis.exceptions.ConnectionError("Redis stopped")
        return real_set(key, value, *args, **kwargs)

    monkeypatch.setattr(strict, "set", set_or_fail)
    monkeypatch.setattr(backend, "set", set_or_fail)


def test_a_publish_that_fails_after_commit_never_lets_the_old_value_be_served(
        monkeypatch, django_capture_on_commit_callbacks):
    assert get_parameter("registrations_paused") == 0  # cached by a worker
    _redis_fails_when_the_value_is_published(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        parameter_set(name="registrations_paused", value=1, reason="emergency")
    assert Parameter.objects.get(name="registrations_paused").value == 1
    monkeypatch.undo()  # Redis is back, still holding what it held
    # A reader that read the old row before the commit stores it now: it must not stick.
    cache.add(cache_key("registrations_paused"), 0, CACHE_TIMEOUT)
    assert get_parameter("registrations_paused") == 1


def test_while_a_change_commits_readers_use_the_database_and_cache_nothing(
        django_assert_num_queries):
    assert get_parameter("quorum_bps") == 400
    parameter_set(name="quorum_bps", value=700)
    with django_assert_num_queries(1):
        assert get_parameter("quorum_bps") == 700  # this connection sees its own write
    assert cache.get(cache_key("quorum_bps")) == "changing"


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("quorum_bps", 0, "value"),
        ("quorum_bps", 10_001, "value"),
        ("registrations_paused", 2, "value"),
        ("voting_period_seconds", 59, "value"),
        ("quorum_bps", "500", "value"),
        ("quorum_bps", 5.0, "value"),
        ("quorum_bps", True, "value"),
        ("no_such_thing", 1, "parameter"),
    ],
)
def test_parameter_set_refuses_bad_values(name, value, field):
    with pytest.raises(InvalidInput) as refused:
        parameter_set(name=name, value=value)
    assert field in refused.value.extra["fields"]
    assert not ParameterChange.objects.exists()
    assert not AuditEvent.objects.filter(action="parameter.changed").exists()


def test_parameter_set_accepts_the_bounds():
    spec = PARAMETER_SPECS["voting_period_seconds"]
    parameter_set(name=spec.name, value=spec.minimum)
    parameter_set(name=spec.name, value=spec.maximum)
    assert ParameterChange.objects.count() == 2


def test_parameters_api_lists_all_seven(anon_client, user_client, moderator_client):
    parameter_set(name="max_model_size", value=1024, reason="tiny")
    for api in (anon_client, user_client, moderator_client):
        response = api.get("/api/v1/parameters/")
        assert response.status_code == 200
        rows = {row["name"]: row for row in response.json()}
        assert set(rows) == NAMES
        assert rows["max_model_size"]["value"] == 1024
        assert rows["quorum_bps"] == {
            "name": "quorum_bps", "value": 400, "default": 400, "minimum": 1,
            "maximum": 10_000, "description": PARAMETER_SPECS["quorum_bps"].description,
            "updated_at": rows["quorum_bps"]["updated_at"],
        }


def test_parameters_api_is_read_only(moderator_client):
    assert moderator_client.post("/api/v1/parameters/", {"name": "quorum_bps", "value": 1},
                                 format="json").status_code == 405
    assert Parameter.objects.get(name="quorum_bps").value == 400


def test_parameter_admin_is_read_only(client, moderator):
    client.force_login(moderator)
    parameter = Parameter.objects.get(name="quorum_bps")
    assert client.get("/admin/registry_site/parameter/").status_code == 200
    client.post(f"/admin/registry_site/parameter/{parameter.pk}/change/", {"value": "1"})
    parameter.refresh_from_db()
    assert parameter.value == 400
