"""The catalog, register form, model page and statistics dashboard."""

import re

import pytest
from django.test import Client

from fees_app.services import account_for
from models_app.models import MetadataChange, Registration, StatusChange
from registry_site.models import AuditEvent

Status = Registration.Status
FORM = {"name": "my-model", "version": "1.0.0", "hash": "cd" * 32, "size_bytes": "2048",
        "parameter_count": "1000", "category": "Speech", "tags": "asr, english",
        "input_shape": "1, 16000", "output_shape": "", "description": "",
        "license": "MIT", "source_url": "https://example.com/m", "architecture": ""}


@pytest.fixture
def browser():
    return Client()


@pytest.fixture
def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def assert_csp_clean(response):
    html = response.content.decode()
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"<script(?![^>]*\ssrc=)", html)


def test_catalog_lists_approved_with_filters(browser, approved, register, user):
    register(user, "hidden-pending")
    response = browser.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "bert-base" in html and "hidden-pending" not in html
    assert 'name="search"' in html and 'name="ordering"' in html
    assert 'class="badge approved"' in html
    assert_csp_clean(response)
    assert "bert-base" not in browser.get("/?category=Speech").content.decode()


def test_catalog_shows_filter_errors_and_pages(browser, register, move, user):
    for i in range(26):
        move(register(user, f"model-{i:02}"), Status.APPROVED)
    first = browser.get("/?ordering=name").content.decode()
    assert "model-00" in first and "model-25" not in first
    assert "page=2" in first
    second = browser.get("/?ordering=name&page=2").content.decode()
    assert "model-25" in second and "page=3" not in second
    bad = browser.get("/?size_min=lots").content.decode()
    assert "Enter a whole number" in bad


def test_catalog_escapes_what_users_wrote(browser, register, move, user):
    move(register(user, "xss-model", tags=["<script>alert(1)</script>"],
                  description="<img src=x onerror=alert(1)>"), Status.APPROVED)
    catalog = browser.get("/?search=%3Cscript%3E").content.decode()
    assert "<script>alert(1)</script>" not in catalog
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in browser.get("/").content.decode()
    page = browser.get("/models/xss-model/").content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_register_form_needs_login(browser):
    response = browser.get("/models/new/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_register_form_quotes_fees(logged_in):
    page = logged_in.get("/models/new/")
    assert page.status_code == 200
    assert b"registration" in page.content and b"update" in page.content
    assert_csp_clean(page)
    quote = logged_in.post("/models/new/", {**FORM, "quote": "1"})
    assert quote.status_code == 200
    assert quote.context["quote"].amount == 3048
    assert not Registration.objects.exists()


def test_register_form_registers_and_redirects(logged_in, user):
    response = logged_in.post("/models/new/", FORM)
    assert response.status_code == 302
    assert response["Location"] == "/models/my-model/?version=1.0.0"
    registration = Registration.objects.get(name="my-model")
    assert registration.tags == ["asr", "english"]
    assert registration.input_shape == [1, 16000]
    assert StatusChange.objects.get(registration=registration).source == "web"
    page = logged_in.get(response["Location"])
    assert b"pending review" in page.content  # the success message
    assert b"Pending" in page.content
    assert account_for(user).balance == 1_000_000 - 3048


def test_register_redirects_to_a_version_with_a_plus_in_it(logged_in):
    response = logged_in.post("/models/new/", {**FORM, "version": "1.0.0+cpu"})
    assert response["Location"] == "/models/my-model/?version=1.0.0%2Bcpu"
    assert logged_in.get(response["Location"]).context["selected"].version == "1.0.0+cpu"


def test_register_form_reports_every_field_error_at_once(logged_in):
    # size_bytes and input_shape fail to parse as numbers, name, hash and source_url break
    # the registration rules: all five come back in one round.
    response = logged_in.post("/models/new/", {**FORM, "name": "Bad Name", "hash": "xyz",
                                               "size_bytes": "lots", "source_url": "ftp://x",
                                               "input_shape": "1, a"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"name", "hash", "size_bytes", "source_url", "input_shape"}
    assert errors["size_bytes"] == ["A valid integer is required."]
    assert not Registration.objects.exists()


def test_register_form_refusing_the_text_itself_does_not_add_required(logged_in):
    response = logged_in.post("/models/new/", {**FORM, "version": "1.0\x00"})
    assert response.context["form"].errors["version"] == ["Null characters are not allowed."]
    assert not Registration.objects.exists()


def test_register_form_quote_reports_every_field_error(logged_in):
    response = logged_in.post("/models/new/", {**FORM, "version": "..", "size_bytes": "-1",
                                               "quote": "1"})
    assert set(response.context["form"].errors) == {"version", "size_bytes"}
    assert response.context["quote"] is None


def test_register_form_shows_refusals(make_user, register, user):
    poor = make_user("poor", balance=10)
    client = Client()
    client.force_login(poor)
    response = client.post("/models/new/", FORM)
    assert "The registration fee is 3048 but the balance is 10." in \
        response.context["form"].non_field_errors()
    register(user, "taken")
    response = client.post("/models/new/", {**FORM, "name": "taken"})
    assert "belongs to another registrant" in response.context["form"].non_field_errors()[0]
    # As in the API, the permission refusal is a security event; the short balance is not.
    denied = AuditEvent.objects.get(action="security.permission_denied")
    assert (denied.actor, denied.details["path"]) == (poor, "/models/new/")


def test_model_page(browser, approved, register, move, client_for, other_user, user):
    client_for(other_user).post("/api/v1/models/bert-base/usage/",
                                {"success": True, "duration_us": 100})
    response = browser.get("/models/bert-base/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Status history" in html and "checked" in html  # the approval reason
    assert response.context["totals"]["total_executions"] == 1
    assert {row["fee_type"]: row["amount"] for row in response.context["fees"]} == {
        "registration": 2024, "execution": 100}
    assert "Deprecate" not in html
    assert_csp_clean(response)
    assert browser.get("/models/bert-base/?version=9").status_code == 404
    register(user, "pending-only")
    assert browser.get("/models/pending-only/").status_code == 404


def test_owner_deprecates_from_the_model_page(logged_in, approved):
    page = logged_in.get("/models/bert-base/").content.decode()
    assert "Deprecate version 1.0.0" in page
    response = logged_in.post("/models/bert-base/deprecate/",
                              {"version": "1.0.0", "reason": "use v2"}, follow=True)
    assert "is now deprecated" in response.content.decode()
    approved.refresh_from_db()
    assert approved.status == Status.DEPRECATED
    assert StatusChange.objects.filter(registration=approved).first().source == "web"


def test_others_cannot_deprecate(other_user, approved):
    client = Client()
    client.force_login(other_user)
    response = client.post("/models/bert-base/deprecate/", {"version": "1.0.0"}, follow=True)
    assert "may not move" in response.content.decode()
    approved.refresh_from_db()
    assert approved.status == Status.APPROVED
    assert Client().post("/models/bert-base/deprecate/", {"version": "1.0.0"}).status_code == 302


def test_stats_dashboard(browser, approved, client_for, other_user):
    client_for(other_user).post("/api/v1/models/bert-base/usage/",
                                {"success": True, "duration_us": 100})
    response = browser.get("/stats/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<meter" in html and '<svg class="chart"' in html and "<rect" in html
    assert "bert-base" in html  # most used
    assert response.context["registry"]["total_models"] == 1
    assert_csp_clean(response)


def test_stats_dashboard_when_empty(browser, db):
    response = browser.get("/stats/")
    assert response.status_code == 200
    assert b"No executions recorded yet" in response.content


def test_model_page_fees_cover_only_the_versions_shown(browser, register, move, user):
    move(register(user, "quiet-model", "1.0.0", size_bytes=1024), Registration.Status.APPROVED)
    register(user, "quiet-model", "2.0.0", size_bytes=5024)  # pending: hidden from others
    fees = {row["fee_type"]: row["amount"]
            for row in browser.get("/models/quiet-model/").context["fees"]}
    assert fees == {"registration": 2024}


def test_fee_quote_ignores_other_registrants_versions(make_user, register, user):
    from models_app.services import registration_fee_quote

    register(user, "someone-elses", "1.0.0", size_bytes=4096)
    quote = registration_fee_quote(owner=make_user("curious"), name="someone-elses",
                                   size_bytes=1024)
    assert (quote.fee_type, quote.amount) == ("registration", 2024)


def _edit_form(client, version="1.0.0"):
    response = client.get(f"/models/bert-base/edit/?version={version}")
    assert response.status_code == 200
    return response, response.context["form"].initial


def test_the_owner_edits_a_version_on_its_page(logged_in, approved):
    page = logged_in.get("/models/bert-base/").content.decode()
    assert "/models/bert-base/edit/?version=1.0.0" in page
    response, initial = _edit_form(logged_in)
    assert_csp_clean(response)
    saved = logged_in.post("/models/bert-base/edit/", {
        "version": "1.0.0", "etag": initial["etag"], "description": "From the page.",
        "license": "mit", "source_url": "", "tags": "a, b, a"}, follow=True)
    assert "Saved the details of bert-base 1.0.0." in saved.content.decode()
    approved.refresh_from_db()
    assert (approved.description, approved.license, approved.tags) == (
        "From the page.", "mit", ["a", "b"])
    change = MetadataChange.objects.get()
    assert (change.source, set(change.changes)) == ("web", {"description", "license", "tags"})
    # An emptied field clears it.
    _, initial = _edit_form(logged_in)
    logged_in.post("/models/bert-base/edit/", {**initial, "description": ""})
    approved.refresh_from_db()
    assert approved.description == ""


def test_an_edit_made_meanwhile_is_not_overwritten(logged_in, client_for, user, approved):
    _, initial = _edit_form(logged_in)
    client_for(user).patch("/api/v1/models/bert-base/versions/1.0.0/",
                           {"description": "From the API."}, format="json")
    response = logged_in.post("/models/bert-base/edit/", {**initial, "description": "Mine."},
                              follow=True)
    assert "Someone changed this version while you were editing it" in response.content.decode()
    assert response.context["form"].initial["description"] == "From the API."
    approved.refresh_from_db()
    assert approved.description == "From the API."


def test_others_may_not_edit_and_moderators_give_a_reason(browser, other_user, moderator,
                                                          approved):
    assert browser.get("/models/bert-base/edit/").status_code == 302  # to the login page
    browser.force_login(other_user)
    assert browser.get("/models/bert-base/edit/").status_code == 403
    assert "/edit/" not in browser.get("/models/bert-base/").content.decode()
    browser.force_login(moderator)
    _, initial = _edit_form(browser)
    refused = browser.post("/models/bert-base/edit/", {**initial, "license": "mit"})
    assert refused.status_code == 200
    assert refused.context["form"].errors["reason"] == [
        "A reason is required for a moderator's edit."]
    browser.post("/models/bert-base/edit/", {**initial, "license": "mit", "reason": "Fixed"})
    approved.refresh_from_db()
    assert approved.license == "mit"
