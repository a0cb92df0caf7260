"""Text that looks like HTML or JavaScript is stored exactly as typed and comes out escaped on
every page and in the admin."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from governance_app.services import proposal_create, voting_power_grant
from models_app.models import Registration

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
TEXT = f"Fast model {SCRIPT} and {IMG} & more"


@pytest.fixture
def hostile(user, moderator, register):
    """An approved version, a pending one and a proposal, all carrying the payloads."""
    approved = register(user, b"a" * 32, name="hostile-model", description=TEXT,
                        license=SCRIPT, tags=[SCRIPT, IMG], architecture=IMG,
                        approve_by=moderator)
    pending = register(user, b"b" * 32, name="hostile-model", version="2.0.0",
                       description=TEXT, tags=[IMG])
    voting_power_grant(user=user, power=100_000, reason="test")
    proposal = proposal_create(proposer=user, type="model_approval", title=f"Approve {SCRIPT}",
                               description=TEXT,
                               payload={"name": pending.name, "version": pending.version,
                                        "reason": IMG})
    return approved, pending, proposal


def assert_escaped(response, *, expect_text=True):
    assert response.status_code == 200
    html = response.content.decode()
    assert SCRIPT not in html
    assert IMG not in html
    assert "onerror=alert(1)>" not in html
    if expect_text:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or \
            "&lt;img src=x onerror=alert(1)&gt;" in html


def test_payloads_are_stored_as_typed(hostile):
    approved, _, proposal = hostile
    approved.refresh_from_db()
    assert approved.description == TEXT
    assert approved.tags == [SCRIPT, IMG]
    assert approved.license == SCRIPT
    assert proposal.title == f"Approve {SCRIPT}"


def test_api_returns_the_text_as_typed(hostile, anon_client):
    response = anon_client.get("/api/v1/models/hostile-model/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert TEXT in json.dumps(response.json())


def test_catalog_escapes(hostile):
    assert_escaped(Client().get("/"))
    assert_escaped(Client().get("/", {"search": SCRIPT}), expect_text=False)


def test_model_page_escapes(hostile, user):
    assert_escaped(Client().get("/models/hostile-model/"))
    owner = Client()
    owner.force_login(user)
    assert_escaped(owner.get("/models/hostile-model/", {"version": "2.0.0"}))


def test_proposal_page_escapes(hostile, user):
    _, _, proposal = hostile
    assert_escaped(Client().get(f"/proposals/{proposal.pk}/"))
    assert_escaped(Client().get("/proposals/"))


def test_admin_escapes(hostile, make_user):
    approved, pending, proposal = hostile
    admin_user = make_user("root", moderator=True, is_superuser=True)
    browser = Client()
    browser.force_login(admin_user)
    pages = [
        reverse("admin:models_app_registration_changelist"),
        reverse("admin:models_app_registration_changelist") + "?q=hostile",
        reverse("admin:models_app_registration_change", args=[approved.pk]),
        reverse("admin:models_app_registration_change", args=[pending.pk]),
        reverse("admin:governance_app_proposal_changelist"),
        reverse("admin:governance_app_proposal_change", args=[proposal.pk]),
        reverse("admin:registry_site_auditevent_changelist"),
    ]
    for page in pages:
        assert_escaped(browser.get(page), expect_text=False)
    assert_escaped(browser.get(pages[2]))
    assert_escaped(browser.get(pages[5]))
    assert Registration.objects.get(pk=approved.pk).description == TEXT
