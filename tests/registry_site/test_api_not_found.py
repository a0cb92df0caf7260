"""Unmatched API paths answer in the error shape, never with an HTML page."""

import pytest


@pytest.mark.parametrize("path", [
    "/api/v1/", "/api/v1/nonexistent/", "/api/v1/models/x/y/z/", "/api/v1/proposals/abc/",
    "/api/v1/models/%C3%A9t%C3%A9/", "/api/v2/models/",
])
def test_unknown_api_paths_are_json_404(anon_client, db, path):
    response = anon_client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_post_without_trailing_slash_names_the_right_path(user_client):
    response = user_client.post("/api/v1/fees/calculate", {"fee_type": "execution", "units": 1},
                                format="json")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "Not found. API paths end with a slash: /api/v1/fees/calculate/",
        "code": "not_found",
    }


def test_api_server_error_is_json(rf, db):
    from registry_site.views import server_error

    response = server_error(rf.get("/api/v1/models/"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"


def test_page_not_found_stays_html(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]
