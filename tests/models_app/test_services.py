"""The registry's services: field rules, fees, ownership, transitions, usage."""

import pytest
from django.core.cache import cache

from fees_app.models import LedgerEntry
from fees_app.services import account_for
from models_app.models import ModelUser, Registration, Source, StatusChange, UsageStats
from models_app.selectors import usage_stats
from models_app.services import (
    registration_create,
    registration_fee_quote,
    registration_transition,
    usage_record,
)
from registry_site.errors import Conflict, Forbidden, InsufficientFunds, InvalidInput, Unavailable
from registry_site.models import AuditEvent
from registry_site.services import parameter_set
from tests.models_app.conftest import HASH

Status = Registration.Status

VALID = {"name": "bert-base", "version": "1.0.0", "hash": HASH, "size_bytes": 1024,
         "parameter_count": 1000}


def fields_of(exc_info) -> dict:
    return exc_info.value.extra["fields"]


def test_register_charges_registration_fee(user):
    registration = registration_create(owner=user, **VALID)
    assert registration.status == Status.PENDING
    assert registration.registration_fee == 2024  # 1000 + 1 per byte (SPEC 4.1 example)
    assert account_for(user).balance == 1_000_000 - 2024
    entry = LedgerEntry.objects.get(model_name="bert-base", kind="debit")
    assert (entry.fee_type, entry.amount, entry.model_version) == ("registration", 2024, "1.0.0")
    assert UsageStats.objects.filter(registration=registration).exists()
    change = StatusChange.objects.get(registration=registration)
    assert (change.from_status, change.to_status, change.actor) == ("", "pending", user)
    assert AuditEvent.objects.filter(action="model.registered",
                                     target_id=str(registration.pk)).exists()


def test_new_version_pays_update_fee_on_size_change(user, register):
    register(user, version="1.0.0", size_bytes=10_000)
    second = register(user, version="1.1.0", size_bytes=5_000)
    assert second.registration_fee == 500 + 5_000  # update fee: 500 + |5000 - 10000|
    entry = LedgerEntry.objects.get(model_version="1.1.0")
    assert (entry.fee_type, entry.units) == ("update", 5_000)


def test_quote_matches_what_is_charged(user, register):
    assert registration_fee_quote(owner=user, name="bert-base", size_bytes=1024).amount == 2024
    register(user, size_bytes=1024)
    quote = registration_fee_quote(owner=user, name="bert-base", size_bytes=2024)
    assert (quote.fee_type, quote.units, quote.amount) == ("update", 1000, 1500)


def test_insufficient_balance_creates_and_debits_nothing(make_user):
    poor = make_user("poor", balance=2000)
    with pytest.raises(InsufficientFunds) as exc:
        registration_create(owner=poor, **VALID)
    assert exc.value.extra["needed"] == 2024
    assert exc.value.extra["balance"] == 2000
    assert not Registration.objects.exists()
    assert account_for(poor).balance == 2000
    assert not LedgerEntry.objects.filter(kind="debit").exists()
    # The name was not claimed either: someone else may take it.
    from models_app.models import ModelName
    assert not ModelName.objects.exists()


def test_paused_registrations_answer_unavailable(user, moderator):
    parameter_set(name="registrations_paused", value=1, actor=moderator, reason="incident")
    cache.clear()
    with pytest.raises(Unavailable) as exc:
        registration_create(owner=user, **VALID)
    assert "paused" in exc.value.detail
    assert not Registration.objects.exists()


def test_only_the_owner_registers_new_versions(user, other_user, register):
    register(user, version="1.0.0")
    with pytest.raises(Forbidden):
        register(other_user, version="2.0.0")
    assert account_for(other_user).balance == 1_000_000
    assert Registration.objects.count() == 1


def test_duplicate_version_conflicts(user, register):
    register(user)
    with pytest.raises(Conflict) as exc:
        register(user)
    assert exc.value.code == "duplicate"
    assert LedgerEntry.objects.filter(kind="debit").count() == 1


@pytest.mark.parametrize(("field", "value"), [
    ("name", "ab"), ("name", "Bert"), ("name", "-bert"), ("name", "bert base"),
    ("name", "x" * 101), ("name", "new"), ("name", 5),
    ("version", ""), ("version", "1.0 beta"), ("version", "v" * 65), ("version", "."),
    ("version", ".."), ("version", "1/2"),
    ("hash", "abc"), ("hash", "g" * 64), ("hash", None),
    ("size_bytes", -1), ("size_bytes", 104_857_601), ("size_bytes", "ten"), ("size_bytes", True),
    ("parameter_count", -1), ("parameter_count", 1_000_000_001),
    ("category", "Vision"),
    ("description", "d" * 5001), ("license", "l" * 101), ("architecture", "a" * 101),
    ("source_url", "ftp://example.com/m"), ("source_url", "javascript:alert(1)"),
    ("source_url", "not a url"),
    ("tags", [f"t{i}" for i in range(21)]), ("tags", ["x" * 51]), ("tags", [""]),
    ("tags", ["ok", None]), ("tags", "nlp"),
    ("input_shape", [1, 0]), ("input_shape", [-3]), ("input_shape", ["x"]),
    ("input_shape", list(range(1, 18))),
    ("output_shape", [1.5]), ("output_shape", [True]), ("output_shape", "1,2"),
])
def test_field_rules_name_the_field(user, field, value):
    with pytest.raises(InvalidInput) as exc:
        registration_create(owner=user, **{**VALID, field: value})
    assert list(fields_of(exc)) == [field]
    assert not Registration.objects.exists()
    assert account_for(user).balance == 1_000_000


def test_every_bad_field_is_reported_at_once(user):
    with pytest.raises(InvalidInput) as exc:
        registration_create(owner=user, name="X", version="", hash="", size_bytes=-1,
                            parameter_count=-1, category="?", source_url="ftp://x")
    assert set(fields_of(exc)) == {"name", "version", "hash", "size_bytes", "parameter_count",
                                   "category", "source_url"}


def test_limits_are_inclusive_and_follow_parameters(user, moderator):
    registration_create(owner=user, **{**VALID, "size_bytes": 104_857_600,
                                       "parameter_count": 1_000_000_000})
    parameter_set(name="max_model_size", value=100, actor=moderator, reason="tighter")
    cache.clear()
    with pytest.raises(InvalidInput) as exc:
        registration_create(owner=user, **{**VALID, "version": "2", "size_bytes": 101})
    assert "at most 100" in fields_of(exc)["size_bytes"][0]


def test_optional_fields_are_stored_normalized(user):
    registration = registration_create(
        owner=user, **{**VALID, "hash": HASH.upper()}, category="Speech",
        description="<b>hi</b>", license="MIT", source_url="https://example.com/m",
        tags=[" asr ", "asr", "english"], architecture="CNN", input_shape=[1, 16000],
        output_shape=[1, 30],
    )
    registration.refresh_from_db()
    assert registration.hash == HASH
    assert registration.tags == ["asr", "english"]
    assert registration.description == "<b>hi</b>"  # stored as given, escaped on output
    assert (registration.input_shape, registration.output_shape) == ([1, 16000], [1, 30])


# Every (from, to) pair: allowed for a moderator exactly when SPEC 3.2 lists it.
ALL_MOVES = [(a, b) for a in Status.values for b in Status.values if a != b]
PATH_TO = {
    Status.PENDING: [],
    Status.APPROVED: [Status.APPROVED],
    Status.REJECTED: [Status.REJECTED],
    Status.SUSPENDED: [Status.APPROVED, Status.SUSPENDED],
    Status.DEPRECATED: [Status.APPROVED, Status.DEPRECATED],
}
ALLOWED = {
    (Status.PENDING, Status.APPROVED), (Status.PENDING, Status.REJECTED),
    (Status.APPROVED, Status.SUSPENDED), (Status.APPROVED, Status.DEPRECATED),
    (Status.SUSPENDED, Status.DEPRECATED), (Status.SUSPENDED, Status.APPROVED),
    (Status.REJECTED, Status.PENDING),
}


@pytest.fixture
def at_status(register, move, user):
    def make(status):
        registration = register(user)
        for step in PATH_TO[status]:
            move(registration, step)
        return registration

    return make


@pytest.mark.parametrize(("from_status", "to_status"), ALL_MOVES)
def test_moderator_transitions(at_status, moderator, from_status, to_status):
    registration = at_status(from_status)
    history = StatusChange.objects.count()
    if (from_status, to_status) in ALLOWED:
        registration_transition(registration=registration, to_status=to_status,
                                actor=moderator, source=Source.API, reason="ok")
        registration.refresh_from_db()
        assert registration.status == to_status
        change = StatusChange.objects.filter(registration=registration).first()
        assert (change.from_status, change.to_status, change.actor, change.source,
                change.reason) == (from_status, to_status, moderator, "api", "ok")
        assert AuditEvent.objects.filter(action="model.status_changed",
                                         details__to=to_status).exists()
    else:
        with pytest.raises(Conflict) as exc:
            registration_transition(registration=registration, to_status=to_status,
                                    actor=moderator, source=Source.API, reason="no")
        assert exc.value.extra == {"from_status": from_status, "to_status": to_status}
        registration.refresh_from_db()
        assert registration.status == from_status
        assert StatusChange.objects.count() == history


@pytest.mark.parametrize(("from_status", "to_status"), sorted(ALLOWED))
def test_owner_may_only_deprecate(at_status, user, from_status, to_status):
    registration = at_status(from_status)
    if (from_status, to_status) in Registration.OWNER_TRANSITIONS:
        registration_transition(registration=registration, to_status=to_status, actor=user,
                                source=Source.WEB)
        registration.refresh_from_db()
        assert registration.status == to_status
    else:
        with pytest.raises(Forbidden):
            registration_transition(registration=registration, to_status=to_status,
                                    actor=user, source=Source.WEB, reason="mine")
        registration.refresh_from_db()
        assert registration.status == from_status


def test_other_user_may_not_move(at_status, other_user):
    registration = at_status(Status.APPROVED)
    with pytest.raises(Forbidden):
        registration_transition(registration=registration, to_status=Status.DEPRECATED,
                                actor=other_user, source=Source.API)
    registration.refresh_from_db()
    assert registration.status == Status.APPROVED


def test_moderator_may_not_approve_own_model(register, moderator):
    registration = register(moderator)
    with pytest.raises(Forbidden) as exc:
        registration_transition(registration=registration, to_status=Status.APPROVED,
                                actor=moderator, source=Source.ADMIN, reason="mine")
    assert exc.value.code == "self_approval"
    registration.refresh_from_db()
    assert registration.status == Status.PENDING


def test_moderator_needs_a_reason(register, user, moderator):
    registration = register(user)
    with pytest.raises(InvalidInput) as exc:
        registration_transition(registration=registration, to_status=Status.APPROVED,
                                actor=moderator, source=Source.ADMIN, reason="  ")
    assert list(fields_of(exc)) == ["reason"]
    registration.refresh_from_db()
    assert registration.status == Status.PENDING


def test_governance_acts_without_actor(register, user):
    registration = register(user)
    registration_transition(registration=registration, to_status=Status.APPROVED, actor=None,
                            source=Source.GOVERNANCE, proposal_id=7)
    change = StatusChange.objects.filter(registration=registration).first()
    assert (change.actor, change.proposal_id, change.source) == (None, 7, "governance")


def test_unknown_status_is_invalid_input(register, user, moderator):
    with pytest.raises(InvalidInput):
        registration_transition(registration=register(user), to_status="archived",
                                actor=moderator, source=Source.API, reason="x")


def test_usage_updates_counters_and_charges_caller(approved, other_user, user):
    usage_record(registration=approved, user=other_user, success=True, duration_us=1000)
    usage_record(registration=approved, user=other_user, success=False, duration_us=3000)
    record = usage_record(registration=approved, user=user, success=True, duration_us=2000)
    assert record.fee == 100
    stats = usage_stats(approved.pk)
    assert (stats.total_executions, stats.successful_executions, stats.failed_executions,
            stats.total_fees_collected, stats.unique_users, stats.avg_execution_time_us) == (
        3, 2, 1, 300, 2, 2000)
    assert stats.last_execution == record.recorded_at
    assert account_for(other_user).balance == 1_000_000 - 200
    assert ModelUser.objects.filter(registration=approved).count() == 2
    assert LedgerEntry.objects.filter(fee_type="execution", model_name="bert-base").count() == 3


@pytest.mark.parametrize("status", [Status.PENDING, Status.REJECTED, Status.SUSPENDED,
                                    Status.DEPRECATED])
def test_usage_of_unapproved_version_conflicts(at_status, other_user, status):
    registration = at_status(status)
    with pytest.raises(Conflict):
        usage_record(registration=registration, user=other_user, success=True, duration_us=1)
    assert usage_stats(registration.pk).total_executions == 0
    assert account_for(other_user).balance == 1_000_000


def test_usage_without_funds_records_nothing(approved, make_user):
    broke = make_user("broke")
    with pytest.raises(InsufficientFunds):
        usage_record(registration=approved, user=broke, success=True, duration_us=1)
    stats = usage_stats(approved.pk)
    assert (stats.total_executions, stats.unique_users) == (0, 0)
    assert not ModelUser.objects.exists()


@pytest.mark.parametrize(("success", "duration"), [("maybe", 1), (None, 1), (True, -1), (True, 1.5),
                                                   (True, 10**12)])
def test_usage_input_rules(approved, other_user, success, duration):
    with pytest.raises(InvalidInput):
        usage_record(registration=approved, user=other_user, success=success,
                     duration_us=duration)
