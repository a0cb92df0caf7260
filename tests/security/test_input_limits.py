"""Request bodies over the limit are refused before any view reads them (413, error shape);
bad input gets a 400 naming the field."""

import pytest

from registry_site.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_json_body_over_the_limit_is_413_in_the_error_shape(user_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = user_client.post("/api/v1/models/", {"name": "big", "description": "x" * 4096})
    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "request_too_large"
    assert "limit is 2048" in body["detail"]


def test_form_post_over_the_limit_is_413(settings, client):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = client.post("/accounts/login/", {"username": "u" * 4096, "password": "x"})
    assert response.status_code == 413


def test_body_within_the_limit_reaches_validation_with_field_errors(user_client):
    response = user_client.post("/api/v1/models/", {
        "name": "<script>", "version": "1.0.0", "hash": "0" * 64, "size_bytes": 10,
        "parameter_count": 1,
    })
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "name" in body["fields"]


# Every test below answered 500 before: JSON the stack could not handle, NUL characters that
# PostgreSQL cannot compare, views whose renderer could not render an error, and errors raised
# before any view.

def raw_post(client, path, body: str):
    return client.post(path, body, content_type="application/json")


@pytest.mark.parametrize("path", ["/api/v1/fees/calculate/", "/api/v1/auth/tokens/"])
@pytest.mark.parametrize("depth", [33, 100_000])
def test_deeply_nested_json_is_400_for_anonymous_posts(anon_client, path, depth):
    response = raw_post(anon_client, path, "[" * depth + "]" * depth)
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - nested deeper than 32 levels.",
                               "code": "parse_error"}


def test_nesting_within_the_bound_still_reaches_validation(anon_client):
    response = raw_post(anon_client, "/api/v1/fees/calculate/",
                        '{"fee_type": "execution", "units": ' + "[" * 30 + "]" * 30 + "}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "units" in response.json()["fields"]


def test_lone_surrogate_as_token_username_is_400(anon_client, user):
    response = raw_post(anon_client, "/api/v1/auth/tokens/",
                        '{"username": "\\ud800", "password": "x"}')
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "parse_error"
    assert "username" in body["detail"]
    assert not AuditEvent.objects.filter(action="auth.login_failed").exists()


@pytest.fixture
def surrogate_targets(user, moderator, register):
    """One endpoint per choice field: fee_type, category, status, type, choice."""
    from governance_app.services import proposal_create, voting_power_grant

    register(user, b"weights", name="surrogate-model")
    voting_power_grant(user=user, power=100_000, reason="test")
    proposal = proposal_create(proposer=user, type="parameter_change", title="Quorum",
                               payload={"parameter": "quorum_bps", "value": 500, "reason": "t"})
    model = {"name": "fresh", "version": "1.0.0", "hash": "a" * 64, "size_bytes": 10,
             "parameter_count": 1}
    return {
        "fee_type": ("/api/v1/fees/calculate/", {"units": 1}),
        "category": ("/api/v1/models/", model),
        "status": ("/api/v1/models/surrogate-model/status/",
                   {"version": "1.0.0", "reason": "because"}),
        "type": ("/api/v1/proposals/", {"title": "t", "payload": {}}),
        "choice": (f"/api/v1/proposals/{proposal.pk}/vote/", {}),
    }


@pytest.mark.parametrize("field", ["fee_type", "category", "status", "type", "choice"])
def test_lone_surrogate_in_a_choice_field_is_400(user_client, surrogate_targets, field):
    import json

    path, body = surrogate_targets[field]
    # json.dumps writes the lone surrogate as the escape "\ud800", as a client would.
    response = raw_post(user_client, path, json.dumps({**body, field: "\ud800"}))
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert field in response.json()["detail"]


def test_surrogate_in_a_key_is_400_with_an_encodable_message(anon_client):
    response = raw_post(anon_client, "/api/v1/fees/calculate/", '{"\\udfff": {"a": "\\ud800"}}')
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize("path", [
    "/models/%00/", "/models/a%00b/deprecate/", "/api/v1/models/%00/",
    "/api/v1/models/%00/versions/1/artifact/", "/api/v1/models/m/versions/%00/artifact/",
])
def test_nul_in_a_path_is_400_before_any_lookup(client, path):
    response = client.get(path)
    assert response.status_code == 400
    if path.startswith("/api/"):
        assert response.json() == {
            "detail": "Paths and query parameters may not contain NUL (0x00) characters.",
            "code": "nul_character"}
    else:
        assert response["Content-Type"] == "text/plain; charset=utf-8"


def test_nul_in_an_artifact_upload_path_is_400(user_client):
    response = user_client.put("/api/v1/models/m%00/versions/1/artifact/", b"x",
                               content_type="application/octet-stream")
    assert response.status_code == 400
    assert response.json()["code"] == "nul_character"


@pytest.mark.parametrize("query", ["action=%00", "action=token.created%00", "%00=1"])
def test_nul_in_the_audit_events_query_is_400(moderator_client, query):
    response = moderator_client.get(f"/api/v1/audit-events/?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "nul_character"


@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/"])
def test_options_on_schema_and_docs_is_405_json(anon_client, path):
    response = anon_client.options(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": 'Method "OPTIONS" not allowed.',
                               "code": "method_not_allowed"}


@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_on_schema_and_docs_are_405_json(anon_client, path, method):
    response = getattr(anon_client, method)(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "method_not_allowed"


def test_schema_and_docs_still_render(anon_client):
    assert anon_client.get("/api/schema/").status_code == 200
    assert anon_client.get("/api/docs/")["Content-Type"].startswith("text/html")


def test_errors_are_json_whatever_the_client_accepts(anon_client):
    response = anon_client.post("/api/v1/models/", {}, HTTP_ACCEPT="text/html")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/api/v1/parameters/", "/api/schema/", "/api/v1/nowhere/"])
def test_disallowed_host_under_api_is_400_json(client, path):
    response = client.get(path, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "The Host header names a host this registry does not serve.",
        "code": "disallowed_host"}


def test_disallowed_host_on_a_page_stays_html(client):
    response = client.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "text/plain"])
def test_the_api_reads_json_bodies_only(client, settings, content_type):
    """A form is never parsed (nor its field count checked): it answers 415 at once."""
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = "&".join(f"f{n}=1" for n in range(20))
    response = client.post("/api/v1/fees/calculate/", body, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert content_type.split(";")[0] in response.json()["detail"]
