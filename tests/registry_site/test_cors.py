"""CORS for the API: off by default; with CORS_ALLOWED_ORIGINS, those origins only."""

import pytest
from rest_framework.test import APIClient

from tests.registry_site.test_settings import start

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"


@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    settings.MIDDLEWARE = ["corsheaders.middleware.CorsMiddleware", *settings.MIDDLEWARE]
    return APIClient()  # made after the change, so it loads the middleware with it


def test_no_cors_headers_by_default(anon_client):
    response = anon_client.get("/api/v1/parameters/", HTTP_ORIGIN=APP)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_an_allowed_origin_may_call_the_api_and_read_its_headers(cors):
    response = cors.get("/api/v1/parameters/", HTTP_ORIGIN=APP)
    assert response["Access-Control-Allow-Origin"] == APP
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"idempotent-replayed", "location", "etag", "retry-after"} <= exposed
    assert "Access-Control-Allow-Credentials" not in response


def test_a_preflight_allows_the_api_headers(cors):
    response = cors.options("/api/v1/models/bert-base/usage/", HTTP_ORIGIN=APP,
                            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,idempotency-key")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "idempotency-key", "content-type"} <= allowed


def test_other_origins_and_the_pages_get_nothing(cors):
    other = cors.get("/api/v1/parameters/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other
    page = cors.get("/", HTTP_ORIGIN=APP)
    assert "Access-Control-Allow-Origin" not in page


def test_errors_carry_cors_headers_too(cors):
    response = cors.get("/api/v1/account/", HTTP_ORIGIN=APP)
    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == APP


@pytest.mark.parametrize("origin", ["app.example.com", "https://app.example.com/", "*"])
def test_a_malformed_origin_stops_start_up(origin):
    result = start(CORS_ALLOWED_ORIGINS=origin)
    assert result.returncode != 0
    assert "CORS_ALLOWED_ORIGINS" in result.stderr


def test_listed_origins_install_the_middleware_outermost():
    shown = ("import django; django.setup(); from django.conf import settings; "
             "print(settings.MIDDLEWARE[0], settings.CORS_ALLOWED_ORIGINS)")
    result = start(CORS_ALLOWED_ORIGINS=f"{APP}, http://localhost:5173", code=shown)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 1) == [
        "corsheaders.middleware.CorsMiddleware",
        "['https://app.example.com', 'http://localhost:5173']\n"]
    assert "corsheaders" not in start(code=shown).stdout
