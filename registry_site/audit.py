"""The audit trail's one writer, and the request context it reads the client address from."""

import contextvars
import hashlib
import ipaddress
import json

from django.db import transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)

GENESIS_HASH = "0" * 64


def set_client_ip(ip: str | None) -> contextvars.Token:
    return _client_ip.set(ip)


def reset_client_ip(token: contextvars.Token) -> None:
    _client_ip.reset(token)


def current_client_ip() -> str | None:
    return _client_ip.get()


def stored_ip(ip: str | None) -> str | None:
    """The address as the database stores and returns it, so the digest covers those bytes.

    GenericIPAddressField rewrites IPv6 on save (``2001:0DB8::0001`` -> ``2001:db8::1``,
    IPv4-mapped ``::ffff:a.b.c.d`` kept dotted); hashing anything else breaks the chain.
    """
    if not ip:
        return None
    address = ipaddress.ip_address(ip)  # ValueError for anything that is not an address
    return clean_ipv6_address(ip) if address.version == 6 else str(address)


def event_digest(*, prev_hash, created_at, actor_id, action, target_type, target_id, ip, details):
    """SHA-256 over a canonical JSON form of one event and the hash before it."""
    payload = json.dumps(
        {
            "prev": prev_hash,
            "at": created_at.isoformat(),
            "actor": actor_id,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "ip": ip,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _without_nul(value):
    """Drop NUL characters: they reach details from raw request paths and PostgreSQL's jsonb
    cannot store them."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def audit_record(*, action: str, actor=None, target=None, target_type: str = "",
                 target_id: str = "", details: dict | None = None, ip: str | None = None):
    """Append one event to the hash chain; call inside the transaction of the change it records.

    The chain head row is locked, so concurrent writers append one after another and no two
    events ever share a predecessor. The lock is held until that transaction commits: make
    this the transaction's last write, since taking other row locks after it invites deadlocks.
    """
    from registry_site.models import AuditChainHead, AuditEvent

    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    ip = stored_ip(ip if ip is not None else current_client_ip())
    details = _without_nul(json.loads(json.dumps(details or {}, default=str)))
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(
            pk=1, defaults={"last_hash": GENESIS_HASH}
        )
        created_at = timezone.now()
        digest = event_digest(
            prev_hash=head.last_hash, created_at=created_at, actor_id=actor_id, action=action,
            target_type=target_type, target_id=str(target_id), ip=ip, details=details,
        )
        event = AuditEvent.objects.create(
            created_at=created_at, actor_id=actor_id, action=action, target_type=target_type,
            target_id=str(target_id), ip=ip, details=details, prev_hash=head.last_hash,
            hash=digest,
        )
        head.last_hash = digest
        head.save(update_fields=["last_hash"])
    return event


def audit_verify() -> tuple[int, str | None]:
    """Walk the chain in order; return (events checked, description of the first bad row)."""
    from registry_site.models import AuditChainHead, AuditEvent

    # The head is read first and the walk stops at the event it names: events appended while
    # the walk runs come after it, and must not look like a head pointing past the table.
    # (The head and its event commit together, so the walk's later snapshot holds that event.)
    head = AuditChainHead.objects.filter(pk=1).values_list("last_hash", flat=True).first()
    expected_prev = GENESIS_HASH
    checked = 0
    last_good = None
    for event in AuditEvent.objects.order_by("pk").iterator(chunk_size=2000):
        if event.prev_hash != expected_prev:
            return checked, (
                f"event {event.pk}: prev_hash does not match the hash of the event before it "
                "(an event was removed or altered)"
            )
        digest = event_digest(
            prev_hash=event.prev_hash, created_at=event.created_at, actor_id=event.actor_id,
            action=event.action, target_type=event.target_type, target_id=event.target_id,
            ip=event.ip, details=event.details,
        )
        if digest != event.hash:
            return checked, f"event {event.pk}: its contents do not match its hash (altered)"
        expected_prev = event.hash
        checked += 1
        last_good = event.pk
        if event.hash == head:
            break
    if head is None:
        if checked:
            return checked, "the chain head row is missing (it was deleted)"
    elif head != expected_prev:
        after = f"after event {last_good}" if last_good else "from the start"
        return checked, (
            f"the newest events were removed {after}: the chain head names a later hash"
        )
    return checked, None
