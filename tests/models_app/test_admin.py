"""The moderators' console: changelist, reasoned bulk actions, read-only change form."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from models_app.models import Registration, StatusChange

Status = Registration.Status
CHANGELIST = "/admin/models_app/registration/"


@pytest.fixture
def console(moderator):
    client = Client()
    client.force_login(moderator)
    return client


def act(console, action, registrations, reason=None):
    data = {"action": action, ACTION_CHECKBOX_NAME: [r.pk for r in registrations]}
    if reason is not None:
        data.update(apply="1", reason=reason)
    return console.post(CHANGELIST, data)


def test_moderators_group_can_use_the_console(console, approved):
    response = console.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    for column in ["Name", "Version", "Owner", "Category", "Status", "Size", "Registered"]:
        assert column in html
    assert "bert-base" in html
    assert console.get(f"{CHANGELIST}?status__exact=approved&q=bert").status_code == 200


def test_changelist_query_count_is_fixed(console, register, user, django_assert_num_queries):
    for i in range(5):
        register(user, f"model-{i}")
    console.get(CHANGELIST)
    with django_assert_num_queries(7) as first:
        console.get(CHANGELIST)
    for i in range(5, 40):
        register(user, f"model-{i}")
    with django_assert_num_queries(len(first.captured_queries)):
        response = console.get(CHANGELIST)
    assert response.content.decode().count('class="action-checkbox"') == 40


def test_action_asks_for_a_reason_first(console, register, user):
    registration = register(user)
    response = act(console, "move_to_approved", [registration])
    assert response.status_code == 200
    assert b"Reason" in response.content
    assert b"bert-base 1.0.0" in response.content
    registration.refresh_from_db()
    assert registration.status == Status.PENDING
    empty = act(console, "move_to_approved", [registration], reason="")
    assert b"This field is required" in empty.content
    # The move's own input bounds the reason before any version moves.
    long = act(console, "move_to_approved", [registration], reason="r" * 2001)
    assert long.context["form"].errors == {
        "reason": ["Ensure this field has no more than 2000 characters."]}
    assert long.context["results"] is None
    registration.refresh_from_db()
    assert registration.status == Status.PENDING


def test_bulk_approve_reports_each_row(console, register, move, user, moderator):
    pending = register(user, "pending-one")
    already = move(register(user, "already-approved"), Status.APPROVED)
    own = register(moderator, "mods-own")
    response = act(console, "move_to_approved", [pending, already, own],
                   reason="Model card reviewed")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("Done") == 1 and html.count("Refused") == 2
    assert "Cannot move already-approved 1.0.0 from approved to approved" in html
    assert "may not approve their own model" in html
    for registration, status in [(pending, Status.APPROVED), (already, Status.APPROVED),
                                 (own, Status.PENDING)]:
        registration.refresh_from_db()
        assert registration.status == status
    change = StatusChange.objects.filter(registration=pending).first()
    assert (change.to_status, change.reason, change.source, change.actor) == (
        "approved", "Model card reviewed", "admin", moderator)


@pytest.mark.parametrize(("action", "start", "end"), [
    ("move_to_rejected", [], Status.REJECTED),
    ("move_to_suspended", [Status.APPROVED], Status.SUSPENDED),
    ("move_to_deprecated", [Status.APPROVED], Status.DEPRECATED),
    ("reopen", [Status.REJECTED], Status.PENDING),
])
def test_each_action(console, register, move, user, action, start, end):
    registration = register(user)
    for step in start:
        move(registration, step)
    act(console, action, [registration], reason="because")
    registration.refresh_from_db()
    assert registration.status == end
    assert StatusChange.objects.filter(registration=registration).first().reason == "because"


def test_change_form_is_read_only(console, approved, client_for):
    url = f"{CHANGELIST}{approved.pk}/change/"
    response = console.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="status"' not in html
    assert "Status history" in html
    assert 'name="_save"' not in html
    assert console.post(url, {"status": "rejected"}).status_code == 403
    approved.refresh_from_db()
    assert approved.status == Status.APPROVED
    assert console.get(f"{CHANGELIST}add/").status_code == 403


def test_change_form_shows_usage(console, approved, client_for, other_user):
    client_for(other_user).post("/api/v1/models/bert-base/usage/",
                                {"success": True, "duration_us": 10})
    html = console.get(f"{CHANGELIST}{approved.pk}/change/").content.decode()
    assert "1 executions (1 succeeded, 0 failed), 1 users, 100 in fees" in html


def test_plain_users_have_no_console(user, approved):
    client = Client()
    client.force_login(user)
    assert client.get(CHANGELIST).status_code == 302


@pytest.mark.parametrize("path", ["statuschange", "usagestats", "storagecharge", "modelname"])
def test_read_only_tables(console, approved, path):
    assert console.get(f"/admin/models_app/{path}/").status_code == 200
    assert console.get(f"/admin/models_app/{path}/add/").status_code == 403
