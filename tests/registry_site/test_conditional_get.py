"""ETag and 304 on the API's JSON reads; errors, writes and pages are left alone."""

import pytest

from registry_site.services import parameter_set

pytestmark = pytest.mark.django_db

PARAMETERS = "/api/v1/parameters/"


def test_a_read_has_an_etag_and_answers_304_until_it_changes(anon_client, moderator):
    first = anon_client.get(PARAMETERS)
    etag = first["ETag"]
    assert first.status_code == 200 and etag
    same = anon_client.get(PARAMETERS, HTTP_IF_NONE_MATCH=etag)
    assert (same.status_code, same.content, same["ETag"]) == (304, b"", etag)
    assert "RateLimit-Remaining" in same
    parameter_set(name="quorum_bps", value=1234, actor=moderator, reason="test")
    changed = anon_client.get(PARAMETERS, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_errors_writes_and_pages_get_no_etag(anon_client, client):
    missing = anon_client.get("/api/v1/models/nothing-here/")
    assert missing.status_code == 404 and "ETag" not in missing
    quote = anon_client.post("/api/v1/fees/calculate/", {"fee_type": "registration",
                                                          "units": 1}, format="json")
    assert quote.status_code == 200 and "ETag" not in quote
    page = client.get("/")
    assert page.status_code == 200 and "ETag" not in page

