"""The account page's ledger links only to model versions the reader may open."""

import hashlib

import pytest
from django.test import Client

from models_app.models import Registration
from models_app.services import registration_create, registration_transition, usage_record

pytestmark = pytest.mark.django_db
Status = Registration.Status


def approved_version(owner, moderator, name):
    registration = registration_create(
        owner=owner, name=name, version="1.0.0", hash=hashlib.sha256(name.encode()).hexdigest(),
        size_bytes=10, parameter_count=1)
    return registration_transition(registration=registration, to_status=Status.APPROVED,
                                   actor=moderator, source="admin", reason="ok")


def test_ledger_links_only_to_versions_the_reader_may_see(make_user, moderator):
    owner = make_user("owner", balance=1_000_000)
    payer = make_user("payer", balance=1_000_000)
    shown = approved_version(owner, moderator, "still-approved")
    hidden = approved_version(owner, moderator, "later-suspended")
    for registration in (shown, hidden):
        usage_record(registration=registration, user=payer, success=True, duration_us=5)
    registration_transition(registration=hidden, to_status=Status.SUSPENDED, actor=moderator,
                            source="admin", reason="abuse")

    client = Client()
    client.force_login(payer)
    page = client.get("/account/").content.decode()
    assert '<a href="/models/still-approved/?version=1.0.0">still-approved 1.0.0</a>' in page
    assert "later-suspended 1.0.0" in page
    assert 'href="/models/later-suspended/' not in page
    assert client.get("/models/later-suspended/?version=1.0.0").status_code == 404
