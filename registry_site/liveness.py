"""``/livez``: the liveness answer, given before Django sees the request.

A load balancer or orchestrator asks this many times a second only to learn whether the
process serves at all; ``/healthz`` is the readiness check that touches PostgreSQL and Redis.
Answering at the WSGI layer means no settings-dependent work runs for it: no middleware (so no
host check, SSL redirect, session, throttle or query), no URL resolving and no database
connection handling from Django's request signals. That is also why a proxy's health probe
with its own Host header or plain HTTP gets 200 here where any other path would answer 400 or
a redirect.
"""

import json

LIVEZ_PATH = "/livez"
BODY = json.dumps({"status": "ok"}).encode()
OK_HEADERS = [
    ("Content-Type", "application/json"),
    ("Content-Length", str(len(BODY))),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
]
# The project's one error shape (registry_site.errors).
NOT_ALLOWED = json.dumps({"detail": "Method not allowed: use GET or HEAD.",
                          "code": "method_not_allowed"}).encode()
NOT_ALLOWED_HEADERS = [
    ("Content-Type", "application/json"),
    ("Content-Length", str(len(NOT_ALLOWED))),
    ("Allow", "GET, HEAD"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
]


class LivenessShortCircuit:
    """Wrap a WSGI application: ``/livez`` is answered here, every other path goes on."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != LIVEZ_PATH:
            return self.application(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        if method == "GET":
            start_response("200 OK", OK_HEADERS)
            return [BODY]
        if method == "HEAD":
            start_response("200 OK", OK_HEADERS)
            return [b""]
        start_response("405 Method Not Allowed", NOT_ALLOWED_HEADERS)
        return [NOT_ALLOWED]
