"""``Idempotency-Key``: a POST retried with the same key runs once and answers as it first did.

A client that sends a charged or creating POST and loses the answer (a timeout, a dropped
connection) cannot tell whether it ran. With a key (any 1 to 255 visible ASCII characters,
a UUID is usual) it sends the same request again: within IDEMPOTENCY_KEY_TTL_SECONDS the
first answer comes back, status and body, with ``Idempotent-Replayed: true``, and nothing is
charged or created twice. The same key with another body (or on another endpoint) is refused
with 422 ``idempotency_key_reused``.

Exactly once, not at most once plus luck: the key's row is inserted in the transaction that
does the work and given the answer before it commits, so the work and the remembered answer
commit together or not at all. A second request with the key waits on that row (the unique
index) until the first commits, then replays its answer; it waits at most
IDEMPOTENCY_WAIT_SECONDS and then answers 409 ``idempotency_key_in_use``. Answers that say
nothing about the work (5xx, 429) are not kept: the work rolled back, and a retry runs it.
Keys are per user; ``idempotency_keys_purge`` (a scheduled job) deletes expired ones.
"""

import contextlib
import functools
import hashlib
import json
import os
import re
from datetime import timedelta

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from registry_site.api.renderers import JSONRenderer
from registry_site.errors import Conflict, DomainError, Unprocessable
from registry_site.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY = re.compile(KEY_PATTERN)
# Headers of the first answer a replay repeats (the rest are the server's of the moment).
KEPT_HEADERS = ("Location",)
# PostgreSQL's "lock not available": the wait for the request holding the key timed out.
_LOCK_TIMEOUT = "55P03"

SCHEMA_PARAMETERS = [
    OpenApiParameter(
        HEADER, str, OpenApiParameter.HEADER, pattern=KEY_PATTERN,
        description=(
            "Any 1 to 255 visible ASCII characters (a UUID is usual). Sent again with the "
            "same body within 24 hours, the request is not run again: the first answer is "
            "returned with `Idempotent-Replayed: true`. The same key with another body "
            "answers 422 `idempotency_key_reused`; while the first request with the key "
            "still runs, a second waits for it, or answers 409 `idempotency_key_in_use`."),
    ),
    OpenApiParameter(REPLAYED_HEADER, str, OpenApiParameter.HEADER, response=True,
                     enum=["true"], description="Set when this is the first answer, replayed."),
]


class InvalidIdempotencyKey(DomainError):
    code = "invalid_idempotency_key"


def idempotent(handler):
    """Decorate a view's POST handler that charges or creates: ``respond_once`` for the
    signed-in user. Put it above ``@action`` and ``@extend_schema``."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        return respond_once(view, request, user=request.user,
                            run=lambda: handler(view, request, *args, **kwargs))

    return extend_schema(parameters=SCHEMA_PARAMETERS)(wrapper)


def respond_once(view, request, *, user, run):
    """``run()``'s answer, once per ``Idempotency-Key`` of ``user``; without the header, just
    ``run()``. ``user`` is who the work is for (the token's owner, or the user a token request
    names and proves)."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return run()
    if not _KEY.match(raw):
        raise InvalidIdempotencyKey(
            f"The {HEADER} header must be 1 to 255 visible ASCII characters (a UUID is usual).")
    key_digest = hashlib.sha256(raw.encode()).hexdigest()
    fingerprint = _fingerprint(request, settings.SECRET_KEY)
    now = timezone.now()
    with transaction.atomic():
        claim = _claim(user.pk, key_digest, fingerprint, now)
        if claim.status_code is not None:  # answered before
            return _replay(claim, raw, request, fingerprint)
        try:
            response = run()
        except Exception as exc:
            # As DRF's dispatch would (the error shape), so the refusal can be kept; what no
            # handler answers is raised again, and the block rolls back.
            response = view.handle_exception(exc)
        if transaction.get_rollback():
            return response  # the transaction failed: the block rolls back, key included
        if response.status_code >= 500 or response.status_code == 429:
            claim.delete()  # the work rolled back; a retry runs it (refusals stay audited)
        else:
            _keep(claim, response, raw)
    return response


def _fingerprint(request, secret) -> str:
    """A keyed hash of what makes two requests the same: method, path and body."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return salted_hmac("registry_site.idempotency.fingerprint",
                       f"{request.method} {request.get_full_path()}\n{body}",
                       secret=secret, algorithm="sha256").hexdigest()


def _claim(user_id: int, key_digest: str, fingerprint: str, now) -> IdempotencyKey:
    """The key's row, locked: a new one (no answer yet: this request runs the work), the
    earlier request's, or an expired one taken over as new."""
    table = IdempotencyKey._meta.db_table
    expires_at = now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    fresh = IdempotencyKey(user_id=user_id, key_digest=key_digest, fingerprint=fingerprint,
                           created_at=now, expires_at=expires_at)
    try:
        with _waiting_at_most(settings.IDEMPOTENCY_WAIT_SECONDS), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (user_id, key_digest, fingerprint, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, key_digest) DO NOTHING "
                "RETURNING id",
                [user_id, key_digest, fingerprint,
                 connection.ops.adapt_datetimefield_value(now),
                 connection.ops.adapt_datetimefield_value(expires_at)])
            row = cursor.fetchone()
            if row is None:
                found = (IdempotencyKey.objects.select_for_update()
                         .get(user_id=user_id, key_digest=key_digest))
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != _LOCK_TIMEOUT:
            raise
        raise Conflict(
            f"Another request with this {HEADER} is still running; retry once it has "
            "answered.", code="idempotency_key_in_use",
            retry_after=settings.IDEMPOTENCY_WAIT_SECONDS) from None
    if row is not None:
        fresh.pk = row[0]
        fresh._state.adding = False
        return fresh
    if found.expires_at <= now:
        IdempotencyKey.objects.filter(pk=found.pk).update(
            fingerprint=fingerprint, created_at=now, expires_at=expires_at,
            status_code=None, response=None)
        fresh.pk = found.pk
        fresh._state.adding = False
        return fresh
    return found


@contextlib.contextmanager
def _waiting_at_most(seconds: int):
    """On PostgreSQL, lock waits in this block time out after ``seconds`` (lock_timeout,
    local to the transaction and set back after; after an error the transaction is over)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout'), "
                       "set_config('lock_timeout', %s, true)", [f"{seconds}s"])
        before = cursor.fetchone()[0]
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])


def _replay(claim: IdempotencyKey, raw: str, request, fingerprint: str) -> HttpResponse:
    same = constant_time_compare(claim.fingerprint, fingerprint)
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    if not same and not any(constant_time_compare(claim.fingerprint, _fingerprint(request, old))
                            for old in secrets[1:]):
        raise Unprocessable(
            f"This {HEADER} was used for a different request (another body or endpoint); "
            "send a new key for a new request.", code="idempotency_key_reused")
    opened = _open(claim, raw, secrets)
    if opened is None:
        raise Conflict(
            f"The first answer to this {HEADER} cannot be read back (the server's secret key "
            "changed). Check whether the first request took effect before sending it again "
            "with a new key.", code="idempotency_key_unreadable")
    headers, body = opened
    response = HttpResponse(body, status=claim.status_code,
                            content_type=JSONRenderer.media_type)
    if not body:
        del response["Content-Type"]  # a 204 has no body to type
    for name, value in headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def _cipher(claim: IdempotencyKey, raw: str, secret) -> AESGCM:
    return AESGCM(salted_hmac("registry_site.idempotency.answer", f"{claim.user_id}:{raw}",
                              secret=secret, algorithm="sha256").digest())


def _keep(claim: IdempotencyKey, response, raw: str) -> None:
    """Store the answer on the claimed row, encrypted (it may carry a token's secret)."""
    if isinstance(response, Response):
        body = JSONRenderer().render(response.data)
    else:
        body = bytes(response.content)
    headers = {name: response[name] for name in KEPT_HEADERS if name in response}
    nonce = os.urandom(12)
    sealed = _cipher(claim, raw, settings.SECRET_KEY).encrypt(
        nonce, orjson.dumps(headers) + b"\n" + body, claim.key_digest.encode())
    IdempotencyKey.objects.filter(pk=claim.pk).update(status_code=response.status_code,
                                                      response=nonce + sealed)


def _open(claim: IdempotencyKey, raw: str, secrets) -> tuple[dict, bytes] | None:
    sealed = bytes(claim.response or b"")
    for secret in secrets:
        try:
            plain = _cipher(claim, raw, secret).decrypt(sealed[:12], sealed[12:],
                                                        claim.key_digest.encode())
        except (InvalidTag, ValueError):
            continue
        headers, _, body = plain.partition(b"\n")
        return orjson.loads(headers), body
    return None


def idempotency_keys_purge(*, now=None) -> int:
    """Delete the keys whose answers have expired; returns how many."""
    now = now or timezone.now()
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now).delete()
    return deleted
