"""Operational endpoints (health, metrics) and the error views: every answer under /api/ is
JSON in the error shape, whatever failed and wherever (middleware, URL resolving, a view)."""

import logging
import sys

from django.core.cache import cache, caches
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from registry_site.compiled import statement_cursor
from registry_site.errors import DomainError, dependency_failure

logger = logging.getLogger(__name__)

METRICS_CACHE_KEY = "metrics:body"
METRICS_SECONDS = 15


@never_cache
@require_GET
def healthz(request):
    """200 when the database and the cache both answer, 503 otherwise."""
    checks = {}
    try:
        with statement_cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = "ok"
    except Exception:
        logger.exception("health check: database")
        checks["database"] = "error"
    try:
        # The strict alias: the default one fails open and would hide an outage.
        counters = caches["throttles"]
        counters.set("healthz", "ok", 10)
        checks["cache"] = "ok" if counters.get("healthz") == "ok" else "error"
    except Exception:
        logger.exception("health check: cache")
        checks["cache"] = "error"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks},
                        status=200 if healthy else 503)


@never_cache
@require_GET
def metrics(request):
    """Prometheus text exposition of the registry's figures."""
    from registry_site.metrics import CONTENT_TYPE_LATEST, render_metrics

    # The figures aggregate whole tables: computed at most every METRICS_SECONDS and shared by
    # every worker through the cache, so frequent scrapes cannot keep the database busy.
    body = cache.get(METRICS_CACHE_KEY)
    if body is None:
        body, _ = render_metrics()
        cache.set(METRICS_CACHE_KEY, body, METRICS_SECONDS)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Any unmatched /api/ path: a 404 in the API's error shape, never an HTML page.

    It also stands in for APPEND_SLASH, which cannot redirect a POST and would answer HTML.
    """
    detail = "Not found."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            detail = f"Not found. API paths end with a slash: {request.path}/"
    return JsonResponse({"detail": detail, "code": "not_found"}, status=404)


DISALLOWED_HOST = {"detail": "The Host header names a host this registry does not serve.",
                   "code": "disallowed_host"}


def is_api(request) -> bool:
    return request.path_info.startswith("/api/")


# Refusals outside /api/ that get a plain HTML page; any other answers one line of text. These
# pages need neither the database nor the cache (no context processors, no session).
HTML_PAGES = {403: "403.html", 503: "503.html"}


def error_response(request, error: DomainError):
    """A refusal made outside DRF: the error shape under /api/, else a plain page."""
    if is_api(request):
        return JsonResponse(error.as_dict(), status=error.status_code)
    if error.status_code in HTML_PAGES:
        body = loader.get_template(HTML_PAGES[error.status_code]).render({"detail": error.detail})
        return HttpResponse(body, status=error.status_code)
    return HttpResponse(f"{error.detail}\n", status=error.status_code,
                        content_type="text/plain; charset=utf-8")


def bad_request(request, exception=None):
    """400 for errors Django raises before any view: a bad Host header (DisallowedHost,
    from request.get_host()), too many form fields, an unreadable body."""
    if not is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        body = DISALLOWED_HOST
    else:
        body = {"detail": "Bad request.", "code": "bad_request"}
    return JsonResponse(body, status=400)


def permission_denied(request, exception=None):
    if not is_api(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse({"detail": "You do not have permission to perform this action.",
                         "code": "permission_denied"}, status=403)


def page_not_found(request, exception=None):
    if not is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def server_error(request):
    """500 in the API's error shape under /api/, Django's page elsewhere; 503 when the
    exception being handled means the database or Redis is down."""
    failure = dependency_failure(sys.exc_info()[1])
    if failure is not None:
        return error_response(request, failure)
    if is_api(request):
        return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
    return defaults.server_error(request)
