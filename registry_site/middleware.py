"""The error shape for everything under /api/, client address, NUL refusal, IP allow-list,
request size limit, page and login rate limits, and 503 when a dependency is down."""

import ipaddress
import sys

import csp.middleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.core.signals import got_request_exception
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.middleware.http import ConditionalGetMiddleware

from registry_site.audit import audit_record, reset_client_ip, set_client_ip
from registry_site.errors import CacheUnavailable, DomainError, Forbidden, dependency_failure
from registry_site.throttling import LoginThrottle, RequestRateThrottle
from registry_site.views import DISALLOWED_HOST, error_response, is_api

# The code an /api/ error gets when something other than the API's own handlers answered it.
FALLBACK_CODES = {400: "bad_request", 401: "not_authenticated", 403: "permission_denied",
                  404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
                  429: "throttled", 500: "server_error", 503: "unavailable"}
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


@receiver(got_request_exception)
def _remember_exception(sender, request=None, **kwargs):
    """Django sends this for an unhandled exception before answering it: keep the exception,
    so ApiErrorShapeMiddleware can tell a stopped database from any other failure."""
    if request is not None:
        request.unhandled_exception = sys.exc_info()[1]


class ApiErrorShapeMiddleware:
    """Outermost: every error under /api/ leaves in the error shape, whoever answered it.

    The API's handlers already answer JSON; this catches what reaches Django's own answers,
    above all with DEBUG on, where errors raised in middleware (a bad Host header, a database
    down while the session is read) get Django's HTML debug page rather than handler400/500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api(request):
            return self.get_response(request)
        try:
            request.get_host()
        except DisallowedHost:
            return JsonResponse(DISALLOWED_HOST, status=400)
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if response.status_code < 400 or content_type.startswith("application/json"):
            return response
        failure = dependency_failure(getattr(request, "unhandled_exception", None))
        if failure is not None:
            return JsonResponse(failure.as_dict(), status=failure.status_code)
        status = response.status_code
        shaped = JsonResponse({"detail": f"{response.reason_phrase}.",
                               "code": FALLBACK_CODES.get(status, "error")}, status=status)
        for header in KEPT_HEADERS:
            if header in response:
                shaped[header] = response[header]
        return shaped


class ApiConditionalGetMiddleware(ConditionalGetMiddleware):
    """Every successful JSON read under /api/ gets an ETag (its body's hash, unless the view
    set its own) and answers 304 to a matching If-None-Match: a client polling a list or a
    model transfers nothing while it has not changed. Streamed answers (artifact downloads)
    and errors are left alone."""

    def process_response(self, request, response):
        if response.status_code != 200 or response.streaming or not is_api(request):
            return response
        return super().process_response(request, response)


class RateLimitHeadersMiddleware:
    """``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` on every answer a rate limit counted
    (registry_site.throttling), not only on 429: a client can slow down before it is refused."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        state = getattr(request, "rate_limit", None)
        if state is not None:
            for name, value in state.headers().items():
                response[name] = value
        return response


def client_ip(request) -> str | None:
    """The client's address: the connection's, or the one the trusted proxies saw.

    With N trusted proxies, the Nth address from the right of X-Forwarded-For was added by the
    outermost trusted proxy; anything left of it may be forged by the client.
    """
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            remote = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(remote)) if remote else None
    except ValueError:
        return None


class ClientIPMiddleware:
    """Puts the client address on the request and in the audit context."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.client_ip = client_ip(request)
        token = set_client_ip(request.client_ip)
        try:
            return self.get_response(request)
        finally:
            reset_client_ip(token)


class NulCharacterMiddleware:
    """Refuses a NUL character in the path or the query string with 400, before any view,
    lookup or audit row sees it: PostgreSQL cannot compare or store one (it answered 500)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.GET
        if "\x00" in request.path_info or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in query.lists()
        ):
            return error_response(request, DomainError(
                "Paths and query parameters may not contain NUL (0x00) characters.",
                code="nul_character"))
        return self.get_response(request)


class IPAllowListMiddleware:
    """When IP_ALLOWLIST is set, only those ranges reach /api/ and /admin/."""

    guarded_prefixes = ("/api/", "/admin/")
    # Refusals are audited once per address per window, as throttling audits only the first
    # 429 of a window: otherwise a flood from outside becomes a flood of audit writes, all
    # queued on the chain head.
    audit_window_seconds = 60

    def __init__(self, get_response):
        self.get_response = get_response
        self.networks = [ipaddress.ip_network(c, strict=False) for c in settings.IP_ALLOWLIST]

    def __call__(self, request):
        if self.networks and request.path_info.startswith(self.guarded_prefixes):
            ip = request.client_ip
            address = ipaddress.ip_address(ip) if ip else None
            if address is None or not any(address in net for net in self.networks):
                # add() is atomic: of many workers refusing one address at once, one audits.
                if cache.add(f"ip_refused:{ip or 'unknown'}", 1, self.audit_window_seconds):
                    audit_record(action="security.ip_refused", ip=ip,
                                 details={"path": request.path, "method": request.method})
                # JSON under /api/, an HTML page under /admin/.
                return error_response(request, Forbidden(
                    "Your address is not on this registry's allow-list.", code="ip_not_allowed"))
        return self.get_response(request)


class RequestSizeLimitMiddleware:
    """Refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE before any view reads them.

    Artifact uploads are exempt: they stream to storage and are bounded by max_model_size.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit and not request.path.endswith("/artifact/"):
            return JsonResponse(
                {"detail": f"Request body too large: {length} bytes, the limit is {limit}.",
                 "code": "request_too_large"},
                status=413,
            )
        return self.get_response(request)


def _throttled(request, throttles, message: str) -> HttpResponse | None:
    """429 with Retry-After if any of ``throttles`` refuses the request, else None; the first
    refusal of a window is audited, as in the API."""
    refused = [throttle for throttle in throttles if not throttle.allow_request(request, None)]
    if not refused:
        return None
    wait = max(throttle.wait() or 1 for throttle in refused)
    refusals = request.throttle_refusals
    if any(refusal["audit"] for refusal in refusals):
        user = getattr(request, "user", None)
        audit_record(action="security.throttled", actor=user, details={
            "path": request.path, "method": request.method, "wait": wait,
            "limits": [{"scope": r["scope"], "rate": r["rate"]} for r in refusals],
        })
    response = HttpResponse(message.format(wait=wait), status=429,
                            content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(wait)
    return response


class LoginRateLimitMiddleware:
    """Login form posts (site and admin) are limited per address and per username, like token
    creation, so the forms are no way around the API's limit on password guessing."""

    login_paths = ("/accounts/login/", "/admin/login/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path_info in self.login_paths:
            try:
                refusal = _throttled(request, [LoginThrottle()],
                                     "Too many login attempts. Try again in {wait} seconds.\n")
            except CacheUnavailable as failure:
                return error_response(request, failure)
            if refusal is not None:
                return refusal
        return self.get_response(request)


class PageRateLimitMiddleware:
    """The HTML pages and the admin count against the same per-address and per-user limits as
    the API (DRF throttles the API itself), so the pages are no way around them."""

    exempt_prefixes = ("/api/", "/static/", "/healthz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(self.exempt_prefixes):
            refusal = _throttled(request, [RequestRateThrottle()],
                                 "Too many requests. Try again in {wait} seconds.\n")
            if refusal is not None:
                return refusal
        return self.get_response(request)


class DependencyFailureMiddleware:
    """A view that meets a stopped database or Redis answers 503 (the API's error shape under
    /api/, a plain page elsewhere) instead of 500. Errors raised in middleware, before any
    view, get the same answer from handler500 (registry_site.views.server_error)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        failure = dependency_failure(exception)
        return None if failure is None else error_response(request, failure)


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware, building the policy of a plain response once.

    A response that no view decorated (csp_update and the like) and whose request used no
    nonce gets the policy of the settings alone, the same text every time; django-csp builds
    it anew for each response, which cost as much as answering a cached read. Any other
    response goes through django-csp unchanged.
    """

    OVERRIDES = ("_csp_config", "_csp_update", "_csp_replace", "_csp_exempt",
                 "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro", "_csp_exempt_ro")

    def __init__(self, get_response):
        super().__init__(get_response)
        self._plain = None

    def _plain_headers(self):
        if self._plain is None:
            excluded = any((getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES")
                           for name in ("CONTENT_SECURITY_POLICY",
                                        "CONTENT_SECURITY_POLICY_REPORT_ONLY"))
            self._plain = None if excluded else [
                (header, policy) for header, policy in (
                    (HEADER, build_policy()), (HEADER_REPORT_ONLY, build_policy(report_only=True)))
                if policy]
        return self._plain

    def process_response(self, request, response):
        plain = self._plain_headers()
        if (plain is None or getattr(request, "_csp_nonce", None) is not None
                or any(hasattr(response, name) for name in self.OVERRIDES)
                or (settings.DEBUG and response.status_code in (404, 500))):
            return super().process_response(request, response)
        for header, policy in plain:
            if header not in response:
                response[header] = policy
        request.csp_nonce = csp.middleware.CheckableLazyObject(self._csp_nonce_post_response)
        return response
