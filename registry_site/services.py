"""Writes owned by registry_site: API tokens and governable parameters."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry_site.audit import audit_record
from registry_site.errors import InvalidInput, NotFound
from registry_site.models import ApiToken, Parameter, ParameterChange
from registry_site.parameters import PARAMETER_SPECS, publish_parameter
from registry_site.roles import allowed_scopes

TOKEN_PREFIX = "air_"


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, user, scopes: list[str] | None = None, expires_in: int | None = None,
                 name: str = "") -> tuple[ApiToken, str]:
    """Issue a token; return it and its secret, which is never stored or shown again."""
    permitted = allowed_scopes(user)
    if scopes is None or len(scopes) == 0:
        scopes = permitted
    refused = sorted(set(scopes) - set(permitted))
    if refused:
        raise InvalidInput({"scopes": f"Not allowed for this user: {', '.join(refused)}."})
    ttl = settings.TOKEN_TTL_SECONDS if expires_in is None else expires_in
    if ttl < 1:
        raise InvalidInput({"expires_in": "Must be at least 1 second."})
    ttl = min(ttl, settings.TOKEN_MAX_TTL_SECONDS)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=secret[:12], digest=token_digest(secret),
            scopes=sorted(set(scopes)), expires_at=timezone.now() + timedelta(seconds=ttl),
        )
        audit_record(action="token.created", actor=user, target=token,
                     details={"scopes": token.scopes, "expires_at": token.expires_at})
    return token, secret


def token_revoke(*, user, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(user=user, pk=token_id).first()
        if token is None:
            raise NotFound(f"Token {token_id} not found.")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_record(action="token.revoked", actor=user, target=token)
    return token


def token_revoke_all(*, user) -> int:
    """Revoke every active token of the user; return how many."""
    with transaction.atomic():
        count = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        audit_record(action="token.revoked_all", actor=user, target=user,
                     target_type="auth.user", details={"count": count})
    return count


def parameter_set(*, name: str, value: int, actor=None, proposal_id: int | None = None,
                  reason: str = "") -> Parameter:
    """Change a governable parameter within its bounds, with history and an audit event."""
    spec = PARAMETER_SPECS.get(name)
    if spec is None:
        raise InvalidInput({"parameter": f"Unknown parameter {name!r}."})
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput({"value": "Must be an integer."})
    if not spec.minimum <= value <= spec.maximum:
        raise InvalidInput(
            {"value": f"{name} must be between {spec.minimum} and {spec.maximum}, got {value}."}
        )
    with transaction.atomic():
        parameter, _ = Parameter.objects.select_for_update().get_or_create(
            name=name, defaults={"value": spec.default}
        )
        old = parameter.value
        parameter.value = value
        parameter.updated_at = timezone.now()
        parameter.save(update_fields=["value", "updated_at"])
        ParameterChange.objects.create(
            parameter=parameter, old_value=old, new_value=value, actor=actor,
            proposal_id=proposal_id, reason=reason,
        )
        audit_record(action="parameter.changed", actor=actor, target=parameter,
                     details={"name": name, "old": old, "new": value,
                              "proposal_id": proposal_id, "reason": reason})
        publish_parameter(name, value)
    return parameter
