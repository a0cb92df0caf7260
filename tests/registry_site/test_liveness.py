"""/livez answers before Django: 200 JSON to GET and HEAD, whatever the host or scheme."""

import json
from io import BytesIO

import pytest
from django.core.signals import request_started

from registry_site.liveness import LivenessShortCircuit
from registry_site.wsgi import application


def call(app, path="/livez", method="GET", **extra):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "10.0.0.9",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": BytesIO(b""),
               "HTTP_HOST": "10.0.0.9", **extra}
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], body


def test_get_answers_ok_json():
    status, headers, body = call(application)
    assert status == "200 OK"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"status": "ok"}
    assert headers["Content-Length"] == str(len(body))


def test_head_answers_ok_without_a_body():
    status, headers, body = call(application, method="HEAD")
    assert status == "200 OK"
    assert body == b""
    assert int(headers["Content-Length"]) > 0


def test_other_methods_answer_405_in_the_error_shape():
    status, headers, body = call(application, method="POST")
    assert status.startswith("405")
    assert headers["Allow"] == "GET, HEAD"
    assert json.loads(body)["code"] == "method_not_allowed"


def test_touches_neither_django_nor_the_database():
    """No django_db mark: pytest-django refuses any database access here, so a query fails."""
    started = []

    def receiver(**kwargs):
        started.append(kwargs)

    request_started.connect(receiver)
    try:
        status, _, _ = call(application)
    finally:
        request_started.disconnect(receiver)
    assert status == "200 OK"
    assert started == []


@pytest.mark.parametrize("path", ["/livez/", "/livezz", "/healthz"])
def test_other_paths_go_on_to_the_application(path):
    seen = []

    def inner(environ, start_response):
        seen.append(environ["PATH_INFO"])
        start_response("204 No Content", [])
        return [b""]

    status, _, _ = call(LivenessShortCircuit(inner), path=path)
    assert status == "204 No Content"
    assert seen == [path]


@pytest.mark.django_db  # the /healthz half goes through Django, which may reach the database
def test_a_proxy_probe_is_not_redirected_or_refused(settings):
    """Behind a proxy, probes come over plain HTTP with the host's own address: the SSL
    redirect and ALLOWED_HOSTS would answer 301 or 400 to any other path."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["registry.example.org"]
    status, _, _ = call(application, HTTP_HOST="172.16.0.4:8000")
    assert status == "200 OK"
    status, _, _ = call(application, path="/healthz", HTTP_HOST="172.16.0.4:8000")
    assert status.startswith("400")
