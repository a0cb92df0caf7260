"""Domain errors and the one exception handler that turns every error into one shape.

Every API error answers ``{"detail": "...", "code": "..."}``; invalid input adds ``fields``,
a mapping of field name to messages.
"""

import logging
from collections.abc import Mapping

import redis.exceptions
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

logger = logging.getLogger(__name__)

# What redis-py raises when the server is stopped, unreachable or too slow to answer.
CACHE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# What Django raises when the database refuses connections or drops them.
DATABASE_ERRORS = (OperationalError, InterfaceError)


class DomainError(Exception):
    """A business rule refused the operation; services raise these, never HTTP errors."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, detail: str, *, code: str | None = None, **extra):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.extra = extra

    def as_dict(self) -> dict:
        return {"detail": self.detail, "code": self.code, **self.extra}


class InvalidInput(DomainError):
    """Bad input for a field; ``fields`` maps field name to messages."""

    def __init__(self, fields: dict[str, list[str] | str], detail: str = "Invalid input."):
        normalized = {k: v if isinstance(v, list) else [v] for k, v in fields.items()}
        super().__init__(detail, code="invalid", fields=normalized)


class InsufficientFunds(DomainError):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    code = "insufficient_funds"


class Forbidden(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class PreconditionFailed(DomainError):
    """An If-Match that no longer matches: someone changed the resource since it was read."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    code = "precondition_failed"


class Unprocessable(DomainError):
    """Well-formed, but not something the server can do (422)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "unprocessable"


class Unavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "unavailable"


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"


class CacheUnavailable(Unavailable):
    code = "cache_unavailable"


def dependency_failure(exc: BaseException | None) -> Unavailable | None:
    """The 503 for an exception that means the database or Redis is down, else None.

    Logged here, once, with the traceback: the client only learns which dependency failed.
    """
    if isinstance(exc, CacheUnavailable):
        return exc
    if isinstance(exc, DATABASE_ERRORS):
        failure = DatabaseUnavailable("The database is not answering. Try again shortly.")
    elif isinstance(exc, CACHE_ERRORS):
        failure = CacheUnavailable("The cache is not answering. Try again shortly.")
    else:
        return None
    logger.error("%s: %s", failure.code, exc, exc_info=exc)
    return failure


def field_messages(errors: Mapping) -> dict[str, list[str]]:
    """DRF's field errors as flat messages under each field name, the one shape of ``fields``.

    A list's item errors (DRF keys them by index) become ``"Item 0: ..."`` messages of the list
    field; a nested object's field errors get dotted names (``"payload.reason"``).
    """
    flat: dict[str, list[str]] = {}
    for field, error in errors.items():
        if isinstance(error, Mapping) and not all(isinstance(key, int) for key in error):
            flat.update(field_messages({f"{field}.{key}": value for key, value in error.items()}))
        else:
            flat[str(field)] = _messages(error)
    return flat


def _messages(error) -> list[str]:
    if isinstance(error, Mapping):
        return [f"Item {key}: {message}" for key, value in error.items()
                for message in _messages(value)]
    if isinstance(error, list):
        return [message for item in error for message in _messages(item)]
    return [str(error)]


def _audit_refusal(exc, context) -> None:
    """Permission refusals and throttling are security events: one audit row per refusal
    (throttling: the first refusal of each client's window, see registry_site.throttling)."""
    from registry_site.audit import audit_record

    request = context.get("request")
    if request is None:
        return
    where = {"path": request.path, "method": request.method,
             "view": type(context.get("view")).__name__}
    if isinstance(exc, (exceptions.PermissionDenied, DjangoPermissionDenied, Forbidden)):
        audit_record(action="security.permission_denied", actor=request.user,
                     details={**where, "detail": str(getattr(exc, "detail", exc))})
    elif isinstance(exc, exceptions.Throttled):
        refusals = getattr(request, "throttle_refusals", [])
        if any(refusal["audit"] for refusal in refusals):
            audit_record(action="security.throttled", actor=request.user, details={
                **where, "wait": exc.wait,
                "limits": [{"scope": r["scope"], "rate": r["rate"]} for r in refusals],
            })


def audit_web_refusal(request, exc: Exception) -> None:
    """The pages' counterpart of the API's audit of permission refusals: a page that catches
    a Forbidden from a service calls this before showing the message."""
    if isinstance(exc, Forbidden):
        from registry_site.audit import audit_record

        audit_record(action="security.permission_denied", actor=request.user, details={
            "path": request.path, "method": request.method, "detail": exc.detail,
        })


# Refusals that happen before DRF checks throttles: without counting them here, a client could
# send unlimited garbage tokens or forbidden requests.
_REFUSED_BEFORE_THROTTLING = (exceptions.NotAuthenticated, exceptions.AuthenticationFailed,
                              exceptions.PermissionDenied, DjangoPermissionDenied, Forbidden)


def _throttle_refusal(exc, context):
    """Failed authentication and permission checks count against the anonymous limit of the
    client's address; over it, the refusal becomes a 429."""
    from registry_site.throttling import AddressRateThrottle

    request, view = context.get("request"), context.get("view")
    if request is None or not isinstance(exc, _REFUSED_BEFORE_THROTTLING):
        return exc
    throttle = AddressRateThrottle()
    if throttle.allow_request(request, view):
        return exc
    return exceptions.Throttled(throttle.wait())


def exception_handler(exc, context):
    """DRF exception handler: domain errors and DRF errors in one shape, always as JSON."""
    # Imported here: rest_framework.views loads the API settings, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    request = context.get("request")
    if request is not None:
        # Errors answer JSON whatever the view renders on success (the schema's YAML, the
        # docs' HTML page) and whatever the client asked for.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    exc = dependency_failure(exc) or _throttle_refusal(exc, context)
    _audit_refusal(exc, context)
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            fields = exc.message_dict
        else:
            fields = {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(fields)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"detail": "Invalid input.", "code": "invalid",
                         "fields": field_messages(fields)}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if isinstance(code, (dict, list)):
            code = "error"
        response.data = {"detail": str(detail), "code": code}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            response.data["retry_after"] = int(exc.wait)
    return response
