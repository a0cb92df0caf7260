"""Operational endpoints: health and metrics."""

import logging

from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

METRICS_CACHE_KEY = "metrics:body"
METRICS_SECONDS = 15


@never_cache
@require_GET
def healthz(request):
    """200 when the database and the cache both answer, 503 otherwise."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = "ok"
    except Exception:
        logger.exception("health check: database")
        checks["database"] = "error"
    try:
        cache.set("healthz", "ok", 10)
        checks["cache"] = "ok" if cache.get("healthz") == "ok" else "error"
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


def server_error(request):
    """500 in the API's error shape under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
    return defaults.server_error(request)
