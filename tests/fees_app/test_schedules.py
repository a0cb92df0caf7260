"""Fee schedules: versioned installs, database constraints, the API list and the admin."""

import pytest
from django.contrib.admin.models import LogEntry
from django.db import IntegrityError, transaction

from fees_app.calculator import MAX_UNIT_FEE
from fees_app.models import FeeSchedule, FeeType
from fees_app.services import fee_charge, fee_quote, schedule_install
from registry_site.errors import Conflict, InvalidInput
from registry_site.models import AuditEvent

pytestmark = pytest.mark.django_db

LINEAR = {"method": "linear", "base_fee": 10, "unit_fee": 2, "min_fee": 5, "max_fee": 1000}


def test_defaults_are_version_one_and_active():
    active = {s.fee_type: s for s in FeeSchedule.objects.active()}
    assert set(active) == set(FeeType.values)
    assert all(s.version == 1 for s in active.values())
    registration = active["registration"]
    assert (registration.method, registration.base_fee, registration.unit_fee,
            registration.min_fee, registration.max_fee, registration.step_size) == (
        "linear", 1000, 1, 1000, 1_000_000, 1000)


def test_install_creates_the_next_version_and_deactivates_the_old(moderator):
    new = schedule_install(fee_type="update", actor=moderator, reason="cheaper", **LINEAR)
    assert new.version == 2
    assert new.is_active
    assert new.created_by == moderator
    old = FeeSchedule.objects.get(fee_type="update", version=1)
    assert not old.is_active
    third = schedule_install(fee_type="update", step_size=10, **{**LINEAR, "method": "step"})
    assert third.version == 3
    assert list(FeeSchedule.objects.filter(fee_type="update", is_active=True)) == [third]
    # Other types are untouched.
    assert FeeSchedule.objects.get(fee_type="registration", is_active=True).version == 1


def test_install_is_audited(moderator):
    schedule = schedule_install(fee_type="execution", actor=moderator, reason="raise",
                                proposal_id=7, **LINEAR)
    event = AuditEvent.objects.get(action="fee_schedule.installed")
    assert event.actor == moderator
    assert (event.target_type, event.target_id) == ("fees_app.feeschedule", str(schedule.pk))
    assert event.details["version"] == 2
    assert event.details["previous_version"] == 1
    assert event.details["proposal_id"] == 7
    assert event.details["reason"] == "raise"


def test_quotes_and_debits_name_the_schedule_version_used(user):
    _, quote = fee_quote(fee_type="update", units=100)
    assert quote.amount == 600
    first = fee_charge(user=user, fee_type="update", units=100)
    assert (first.schedule.version, first.amount, first.units) == (1, 600, 100)
    schedule_install(fee_type="update", reason="new", **LINEAR)
    second = fee_charge(user=user, fee_type="update", units=100)
    assert (second.schedule.version, second.amount) == (2, 210)
    first.refresh_from_db()
    assert first.schedule.version == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"min_fee": 20, "max_fee": 10, "base_fee": 10}, "min_fee"),
        ({"base_fee": 1}, "base_fee"),
        ({"base_fee": 1001}, "base_fee"),
        ({"unit_fee": MAX_UNIT_FEE + 1}, "unit_fee"),
        ({"unit_fee": -1}, "unit_fee"),
        ({"base_fee": -1, "min_fee": -1}, "base_fee"),
        ({"max_fee": -5}, "max_fee"),
        ({"step_size": 0}, "step_size"),
        ({"method": "random"}, "method"),
        ({"fee_type": "donation"}, "fee_type"),
        ({"max_fee": 2**63}, "max_fee"),
    ],
)
def test_install_refuses_invalid_schedules_naming_the_field(changes, field):
    values = {"fee_type": "storage", **LINEAR, **changes}
    with pytest.raises(InvalidInput) as refused:
        schedule_install(**values)
    assert field in refused.value.extra["fields"]
    assert FeeSchedule.objects.filter(fee_type="storage").count() == 1
    assert not AuditEvent.objects.filter(action="fee_schedule.installed").exists()


def _bypass(**changes):
    values = {"fee_type": "storage", "version": 99, "is_active": False, "step_size": 1000,
              **LINEAR, **changes}
    with transaction.atomic():
        FeeSchedule.objects.create(**values)


@pytest.mark.parametrize(
    "changes",
    [
        {"min_fee": 20, "max_fee": 10, "base_fee": 15},
        {"base_fee": 1},
        {"base_fee": 1001},
        {"unit_fee": MAX_UNIT_FEE + 1},
        {"unit_fee": -1},
        {"base_fee": -1, "min_fee": -1},
        {"step_size": 0},
    ],
)
def test_database_refuses_invalid_schedules_bypassing_the_service(changes):
    with pytest.raises(IntegrityError):
        _bypass(**changes)


def test_database_keeps_one_active_version_per_type():
    with pytest.raises(IntegrityError):
        _bypass(is_active=True)
    with pytest.raises(IntegrityError):
        _bypass(version=1)  # versions are unique per type
    _bypass()  # a valid inactive version is fine


def test_schedule_list_shows_active_ones_and_history(anon_client):
    schedule_install(fee_type="proposal", method="fixed", base_fee=20_000, unit_fee=0,
                     min_fee=20_000, max_fee=20_000, reason="dearer")
    active = anon_client.get("/api/v1/fees/schedules/")
    assert active.status_code == 200
    rows = active.json()
    assert len(rows) == 5
    assert all(r["is_active"] for r in rows)
    proposal = next(r for r in rows if r["fee_type"] == "proposal")
    assert (proposal["version"], proposal["base_fee"]) == (2, 20_000)
    assert set(proposal) == {"fee_type", "version", "method", "base_fee", "unit_fee", "min_fee",
                             "max_fee", "step_size", "is_active", "reason", "proposal_id",
                             "created_at"}
    history = anon_client.get("/api/v1/fees/schedules/?history=1").json()
    assert len(history) == 6
    assert [(r["version"], r["is_active"]) for r in history if r["fee_type"] == "proposal"] == [
        (2, True), (1, False)]


def test_schedule_list_as_user_and_moderator(user_client, moderator_client):
    assert user_client.get("/api/v1/fees/schedules/").status_code == 200
    assert moderator_client.get("/api/v1/fees/schedules/").status_code == 200


def test_schedule_list_is_read_only(user_client):
    response = user_client.post("/api/v1/fees/schedules/", LINEAR, format="json")
    assert response.status_code == 405


def _admin_form(**changes):
    return {"fee_type": "storage", "method": "step", "base_fee": "10", "unit_fee": "3",
            "min_fee": "0", "max_fee": "5000", "step_size": "100", "reason": "per 100 bytes",
            **changes}


def test_admin_add_installs_a_new_version_through_the_service(client, moderator):
    client.force_login(moderator)
    form = client.get("/admin/fees_app/feeschedule/add/?fee_type=update")
    assert form.status_code == 200
    assert form.context["adminform"].form.initial["base_fee"] == 500
    response = client.post("/admin/fees_app/feeschedule/add/", _admin_form())
    assert response.status_code == 302, response.context and response.context["errors"]
    new = FeeSchedule.objects.get(fee_type="storage", is_active=True)
    assert (new.version, new.method, new.step_size, new.created_by, new.reason) == (
        2, "step", 100, moderator, "per 100 bytes")
    assert not FeeSchedule.objects.get(fee_type="storage", version=1).is_active
    event = AuditEvent.objects.get(action="fee_schedule.installed")
    assert event.actor == moderator
    assert event.details["version"] == 2
    assert LogEntry.objects.get().object_repr == "storage v2 (step)"


def test_admin_add_refuses_an_invalid_schedule(client, moderator):
    client.force_login(moderator)
    response = client.post("/admin/fees_app/feeschedule/add/",
                           _admin_form(base_fee="6000"))
    assert response.status_code == 200
    assert "base_fee" in response.context["adminform"].form.errors
    assert FeeSchedule.objects.filter(fee_type="storage").count() == 1


def test_install_names_every_error_in_one_answer():
    with pytest.raises(InvalidInput) as refused:
        schedule_install(fee_type="storage", method="step", base_fee=5, unit_fee=2_000_000,
                         min_fee=10, max_fee=1, step_size=0, reason="bad")
    assert set(refused.value.extra["fields"]) == {"unit_fee", "step_size", "min_fee"}
    assert FeeSchedule.objects.filter(fee_type="storage").count() == 1


def test_admin_add_shows_every_error_in_one_round(client, moderator):
    client.force_login(moderator)
    response = client.post("/admin/fees_app/feeschedule/add/", _admin_form(
        unit_fee="2000000", step_size="0", min_fee="10", max_fee="1", base_fee="5"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {
        "unit_fee": [f"Ensure this value is less than or equal to {MAX_UNIT_FEE}."],
        "step_size": ["Ensure this value is greater than or equal to 1."],
        "min_fee": ["Must not exceed max_fee."],
    }
    assert FeeSchedule.objects.filter(fee_type="storage").count() == 1


def test_admin_schedules_cannot_be_changed_or_deleted(client, moderator):
    client.force_login(moderator)
    schedule = FeeSchedule.objects.get(fee_type="storage")
    url = f"/admin/fees_app/feeschedule/{schedule.pk}/change/"
    assert client.get(url).status_code == 200  # view only
    client.post(url, _admin_form(base_fee="1"))
    schedule.refresh_from_db()
    assert (schedule.method, schedule.base_fee) == ("linear", 0)
    assert client.post(f"/admin/fees_app/feeschedule/{schedule.pk}/delete/").status_code == 403
    assert FeeSchedule.objects.filter(pk=schedule.pk).exists()


def test_admin_schedules_refused_to_a_plain_user(client, user):
    user.is_staff = True
    user.save()
    client.force_login(user)
    assert client.get("/admin/fees_app/feeschedule/add/").status_code == 403
    assert client.post("/admin/fees_app/feeschedule/add/", _admin_form()).status_code == 403
    assert FeeSchedule.objects.filter(fee_type="storage").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_installs_queue_up_into_consecutive_versions():
    import threading

    from django.db import connection

    barrier = threading.Barrier(8)
    errors = []

    def install(n):
        try:
            barrier.wait()
            schedule_install(fee_type="execution", method="fixed", base_fee=100 + n, unit_fee=0,
                             min_fee=0, max_fee=10_000, reason=f"install {n}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=install, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    versions = list(FeeSchedule.objects.filter(fee_type="execution").order_by("version")
                    .values_list("version", "is_active"))
    assert versions == [(v, v == 9) for v in range(1, 10)]
    previous = sorted(AuditEvent.objects.filter(action="fee_schedule.installed")
                      .values_list("details__previous_version", flat=True))
    assert previous == list(range(1, 9))


def _refusing_install(monkeypatch, refusal):
    import fees_app.admin

    def install_then_refuse(**kwargs):
        # The service installs, then a later check in the same save refuses: the admin must
        # show the refusal and roll the install back.
        schedule_install(**kwargs)
        raise refusal

    monkeypatch.setattr(fees_app.admin, "schedule_install", install_then_refuse)


def test_admin_add_shows_a_service_refusal_on_the_posted_form_and_writes_nothing(
        client, moderator, monkeypatch):
    _refusing_install(monkeypatch, Conflict("Another change to the storage schedule won; "
                                            "try again."))
    client.force_login(moderator)
    response = client.post("/admin/fees_app/feeschedule/add/", _admin_form())
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.non_field_errors() == ["Another change to the storage schedule won; try again."]
    # What the moderator typed is still there.
    assert {name: form[name].value() for name in _admin_form()} == _admin_form()
    assert b"per 100 bytes" in response.content
    storage = FeeSchedule.objects.filter(fee_type="storage")
    assert list(storage.values_list("version", "is_active")) == [(1, True)]
    assert not AuditEvent.objects.filter(action="fee_schedule.installed").exists()
    assert not LogEntry.objects.exists()


def test_admin_add_shows_a_refusal_naming_fields_on_those_fields(client, moderator,
                                                                 monkeypatch):
    _refusing_install(monkeypatch, InvalidInput({"max_fee": "Too high for today.",
                                                 "budget": "Spent."}))
    client.force_login(moderator)
    response = client.post("/admin/fees_app/feeschedule/add/", _admin_form())
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["max_fee"] == ["Too high for today."]
    assert form.non_field_errors() == ["Invalid input.", "budget: Spent."]
    assert form["max_fee"].value() == "5000"
    assert FeeSchedule.objects.filter(fee_type="storage").count() == 1
    assert not AuditEvent.objects.filter(action="fee_schedule.installed").exists()


def test_a_charge_never_uses_a_schedule_it_saw_in_a_rolled_back_install(user):
    """fee_charge prices with the schedule this process last charged with, and its debit
    checks that the row is still active with those terms. A schedule seen inside a
    transaction that rolled back (whose id SQLite may give the next install) is not
    charged."""
    from fees_app.models import Account

    with transaction.atomic():
        schedule_install(fee_type="update", reason="rolled back",
                         **{**LINEAR, "method": "fixed", "base_fee": 77, "min_fee": 0})
        assert fee_charge(user=user, fee_type="update", units=100).amount == 77
        transaction.set_rollback(True)
    installed = schedule_install(fee_type="update", reason="kept",
                                 **{**LINEAR, "method": "fixed", "base_fee": 55, "min_fee": 0})
    before = Account.objects.get(user=user).balance
    entry = fee_charge(user=user, fee_type="update", units=100)
    assert (entry.amount, entry.schedule_id) == (55, installed.pk)
    assert Account.objects.get(user=user).balance == before - 55


def test_a_refused_debit_still_names_the_balance_and_the_fee(make_user):
    from registry_site.errors import InsufficientFunds

    poor = make_user("poor", balance=1000)
    assert fee_charge(user=poor, fee_type="update", units=0).amount == 500  # now remembered
    with pytest.raises(InsufficientFunds) as refused:
        fee_charge(user=poor, fee_type="update", units=100)
    assert (refused.value.extra["needed"], refused.value.extra["balance"]) == (600, 500)
