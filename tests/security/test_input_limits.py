"""Request bodies over the limit are refused before any view reads them (413, error shape);
bad input gets a 400 naming the field."""

import pytest

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
