"""The audit trail: its one writer (unsealed events), its sealer, its verifier and checkpoints,
and the request context it reads the client address from."""

import contextvars
import datetime
import hashlib
import hmac
import ipaddress
import json
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from registry_site.compiled import insert_new

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


def event_digest(*, prev_hash, created_at, actor_id, action, target_type, target_id, ip, details,
                 seq=None):
    """SHA-256 over a canonical JSON form of one event, its chain position and the hash before
    it. ``seq`` is None only for events sealed before positions were hashed (legacy_seq)."""
    body = {
        "prev": prev_hash,
        "at": created_at.isoformat(),
        "actor": actor_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "ip": ip,
        "details": details,
    }
    if seq is not None:
        body["seq"] = seq
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
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
    """Append one unsealed event; call inside the transaction of the change it records.

    One INSERT and nothing else: no lock and no read of the chain head, so audited writes of
    unrelated users never wait for each other. The event commits or rolls back with the
    change; the sealer (audit_seal) gives it its chain position and hash after commit.
    """
    from registry_site.models import AuditEvent

    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    ip = stored_ip(ip if ip is not None else current_client_ip())
    details = _without_nul(json.loads(json.dumps(details or {}, default=str)))
    event = insert_new(AuditEvent(
        created_at=timezone.now(), actor_id=actor_id, action=action, target_type=target_type,
        target_id=str(target_id), ip=ip, details=details,
    ))
    if settings.AUDIT_SEAL_ON_COMMIT:
        _seal_on_commit()
    return event


def _seal_after_commit():
    audit_seal()


def _seal_on_commit():
    """Without a broker nothing else seals (no beat): seal once after this transaction
    commits, however many events it recorded. With a broker, beat seals; enqueueing here would
    cost every audited request a round trip to the broker."""
    connection = transaction.get_connection()
    if any(entry[1] is _seal_after_commit for entry in connection.run_on_commit):
        return
    # robust: the change is committed by then; a failed seal must not turn its response into
    # an error (the next seal, or run_scheduled, picks the event up).
    transaction.on_commit(_seal_after_commit, robust=True)


SEAL_LOCK_KEY = 0x41554449  # "AUDI": names the sealer's PostgreSQL advisory lock


@dataclass
class SealRun:
    """What one audit_seal() call did."""

    sealed: int = 0
    batches: int = 0
    skipped: bool = False  # another sealer held the lock

    def __str__(self):
        if self.skipped and not self.sealed:
            return "skipped: another sealer is running"
        return f"sealed {self.sealed} event(s) in {self.batches} batch(es)"


def _store_seals(connection, table: str, events) -> None:
    """Write the batch's seals: on PostgreSQL one UPDATE joined to a VALUES list, elsewhere
    one UPDATE a row (bulk_update's CASE expressions cost far more, in Python and SQL)."""
    rows = [(e.pk, e.seq, e.prev_hash, e.hash) for e in events]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            values = ", ".join(["(%s::bigint, %s::bigint, %s, %s)"] * len(rows))
            cursor.execute(
                f"UPDATE {table} AS e SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash "
                f"FROM (VALUES {values}) AS v(id, seq, prev_hash, hash) "
                "WHERE e.id = v.id AND e.seq IS NULL",
                [value for row in rows for value in row],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET seq = %s, prev_hash = %s, hash = %s "
                "WHERE id = %s AND seq IS NULL",
                [(seq, prev_hash, digest, pk) for pk, seq, prev_hash, digest in rows],
            )


def _seal_batch(batch_size: int) -> int | None:
    """Seal up to batch_size committed events in id order; None if another sealer runs."""
    from registry_site.models import AuditChainHead, AuditEvent

    with transaction.atomic():
        connection = transaction.get_connection()
        if connection.vendor == "postgresql":
            # Held to this transaction's end. SQLite needs nothing: its IMMEDIATE
            # transactions (settings) already run one writer at a time.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
                if not cursor.fetchone()[0]:
                    return None
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(
            pk=1, defaults={"last_hash": GENESIS_HASH}
        )
        # Read committed: only events whose transactions have committed are visible, so a
        # transaction still open keeps its event out of this batch and it is sealed later.
        events = list(AuditEvent.objects.filter(seq__isnull=True).order_by("pk")[:batch_size])
        for event in events:
            event.seq = head.last_seq + 1
            event.prev_hash = head.last_hash
            event.hash = event_digest(
                seq=event.seq, prev_hash=event.prev_hash, created_at=event.created_at,
                actor_id=event.actor_id, action=event.action, target_type=event.target_type,
                target_id=event.target_id, ip=event.ip, details=event.details,
            )
            head.last_seq, head.last_hash = event.seq, event.hash
        if events:
            _store_seals(connection, AuditEvent._meta.db_table, events)
            head.save(update_fields=["last_seq", "last_hash"])
        return len(events)


def audit_seal(*, batch_size: int | None = None, max_batches: int = 100) -> SealRun:
    """Seal every committed unsealed event into the chain, one batch per transaction.

    Only one sealer runs at a time; a second one returns at once (skipped). After its last
    batch the sealer looks again, outside its lock: an event whose seal was skipped while
    this one held the lock is then visible and is sealed here, so none is left behind.
    max_batches bounds one call under a steady stream of writes; the next call goes on.
    """
    from registry_site.models import AuditEvent

    batch_size = batch_size or settings.AUDIT_SEAL_BATCH
    run = SealRun()
    while run.batches < max_batches:
        sealed = _seal_batch(batch_size)
        if sealed is None:
            run.skipped = True
            break
        run.batches += 1
        run.sealed += sealed
        if sealed < batch_size and not AuditEvent.objects.filter(seq__isnull=True).exists():
            break
    return run


@dataclass
class ChainProblem:
    """One kind of defect on a run of consecutive events (``first`` to ``last``)."""

    first: int
    last: int
    reason: str

    def __str__(self):
        rows = f"event {self.first}" if self.first == self.last else (
            f"events {self.first}-{self.last}")
        return f"{rows}: {self.reason}"


@dataclass
class AuditReport:
    """What a walk over the whole audit table found."""

    checked: int = 0
    problems: list = field(default_factory=list)
    newest_id: int | None = None
    newest_hash: str = GENESIS_HASH
    prev_id: int | None = None  # the row before the one being checked
    # Committed events the sealer has not reached yet: not defects, but not proven either.
    unsealed: int = 0
    oldest_unsealed_at: datetime.datetime | None = None

    def unsealed_age(self) -> float:
        """Seconds the oldest unsealed event has waited (0 when every event is sealed)."""
        if self.oldest_unsealed_at is None:
            return 0.0
        return max(0.0, (timezone.now() - self.oldest_unsealed_at).total_seconds())

    def add(self, event_id: int | None, reason: str) -> None:
        """Record a defect; consecutive events with the same defect become one range."""
        if event_id is None:
            self.problems.append(reason)
            return
        last = self.problems[-1] if self.problems else None
        if isinstance(last, ChainProblem) and last.reason == reason and last.last == self.prev_id:
            last.last = event_id
        else:
            self.problems.append(ChainProblem(event_id, event_id, reason))

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str | None:
        return "; ".join(str(p) for p in self.problems) or None


NOT_LINKED = ("not on the chain: prev_hash is not the hash of the event before (an event was "
              "removed, or this row was inserted or rewritten)")
ALTERED = "contents do not match the stored hash (altered)"
AFTER_HEAD = "not on the chain: after the event the chain head names (the head was moved back)"


def _digest_of(event) -> str:
    return event_digest(
        seq=event.seq if event.seq > event.legacy_seq else None, prev_hash=event.prev_hash,
        created_at=event.created_at, actor_id=event.actor_id,
        action=event.action, target_type=event.target_type, target_id=event.target_id,
        ip=event.ip, details=event.details,
    )


def audit_report(*, checkpoints: list | None = None) -> AuditReport:
    """Check every sealed row in chain order, the chain head and checkpoints; count the rest.

    Chain order is seq, the order the sealer saw commits in, not id order. Each row must
    hash to its stored hash and link to the row before it; the head must name the newest row;
    each checkpoint's event must still be there with the hash it signed. Nothing stops at the
    head or at the first defect, so rows left behind a head that was moved back, or a forked
    run of rewritten rows, are all named. Unsealed events are counted, not checked.
    """
    from registry_site.models import AuditChainHead, AuditCheckpoint, AuditEvent

    report = AuditReport()
    expected = {cp.event_id: cp for cp in checkpoints or []}
    for stored in AuditCheckpoint.objects.all():
        expected.setdefault(stored.event_id, stored)
    # Every row carries the head, read by the same statement: one snapshot for both, so
    # events appended during the walk are not seen at all and cannot look like rows past the
    # head or a head past the table.
    head_row = AuditChainHead.objects.filter(pk=1)
    rows = AuditEvent.objects.filter(seq__isnull=False).annotate(
        head=Subquery(head_row.values("last_hash")[:1]),
        legacy_seq=Coalesce(Subquery(head_row.values("legacy_seq")[:1]), 0),
    ).order_by("seq")
    head = GENESIS_HASH
    head_id = None  # the id of the event the head names; 0 for the genesis hash
    for event in rows.iterator(chunk_size=2000):
        if not report.checked:
            head = event.head
            head_id = 0 if head == GENESIS_HASH else None
        report.checked += 1
        if _digest_of(event) != event.hash:
            report.add(event.pk, ALTERED)
        elif event.prev_hash != report.newest_hash:
            report.add(event.pk, NOT_LINKED)
        elif head_id is not None:
            report.add(event.pk, AFTER_HEAD)
        if event.hash == head:
            head_id = event.pk
        checkpoint = expected.pop(event.pk, None)
        if checkpoint is not None and not hmac.compare_digest(checkpoint.hash, event.hash):
            report.add(None, (
                f"event {event.pk} has hash {event.hash[:16]}…, but the checkpoint of "
                f"{checkpoint.created_at} signed {checkpoint.hash[:16]}… (it was rewritten)"
            ))
        report.prev_id = event.pk
        report.newest_id, report.newest_hash = event.pk, event.hash
    if not report.checked:
        head = AuditChainHead.objects.filter(pk=1).values_list("last_hash", flat=True).first()
        if head is not None and AuditEvent.objects.filter(hash=head).exists():
            head = GENESIS_HASH  # the first events were sealed after the walk began
        head_id = 0 if head in (None, GENESIS_HASH) else None
    for event_id, checkpoint in sorted(expected.items()):
        report.add(None, (
            f"event {event_id}, signed by the checkpoint of {checkpoint.created_at}, is no "
            "longer in the table (the log was truncated or the event deleted)"
        ))
    if head is None:
        if report.checked:
            report.add(None, "the chain head row is missing (it was deleted)")
    elif head_id is None:
        after = f"after event {report.newest_id}" if report.newest_id else "from the start"
        report.add(None, (
            f"the newest events were removed {after}: the chain head names a hash that no "
            "event has"
        ))
    # After the walk: an event sealed meanwhile is then counted in neither, never in both.
    pending = AuditEvent.objects.filter(seq__isnull=True).aggregate(
        count=Count("pk"), oldest=Min("created_at"))
    report.unsealed, report.oldest_unsealed_at = pending["count"], pending["oldest"]
    return report


def audit_verify() -> tuple[int, str | None]:
    """(rows checked, every defect found or None): the short form of audit_report()."""
    report = audit_report()
    return report.checked, report.summary()


# Signed checkpoints: the chain proves order and contents but not completeness, since whoever
# can rewrite the table can also cut its end and move the head back. A checkpoint is the
# newest event's id and hash under an HMAC whose key never enters the database; kept outside
# it, like a certificate-transparency signed tree head, it proves later that the log still
# holds that event with that hash.
CHECKPOINT_FORMAT = "ai-registry-audit-checkpoint/1"
CHECKPOINT_FIELDS = ("format", "event_id", "hash", "created_at", "key_id")
HEX64 = re.compile(r"[0-9a-f]{64}")


class CheckpointError(Exception):
    """A checkpoint that cannot be made or cannot be trusted."""


def checkpoint_key() -> bytes:
    key = settings.AUDIT_CHECKPOINT_KEY
    if not key:
        raise CheckpointError(
            "AUDIT_CHECKPOINT_KEY is not set: set it in the environment of the hosts that run "
            "audit_checkpoint and verify_audit_log to a random secret of at least 32 "
            "characters (python -c 'import secrets; print(secrets.token_hex(32))'), and keep "
            "it out of the database and its backups; the web workers do not need it."
        )
    return key.encode()


def checkpoint_key_id(key: bytes) -> str:
    """Names the key without revealing it, so a checkpoint says which key signed it."""
    return hashlib.sha256(b"audit-checkpoint-key-id:" + key).hexdigest()[:16]


def _signature(key: bytes, body: dict) -> str:
    message = json.dumps({name: body[name] for name in CHECKPOINT_FIELDS}, sort_keys=True,
                         separators=(",", ":"))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def checkpoint_create():
    """Sign and store the newest event of an intact chain; refuses a broken one."""
    from registry_site.models import AuditCheckpoint

    key = checkpoint_key()
    report = audit_report()
    if not report.ok:
        raise CheckpointError(
            f"The audit log is broken, so it is not signed: {report.summary()}")
    if report.newest_id is None:
        raise CheckpointError("The audit log is empty: there is no event to sign yet.")
    now = timezone.now()
    body = {"format": CHECKPOINT_FORMAT, "event_id": report.newest_id,
            "hash": report.newest_hash, "created_at": now.isoformat(),
            "key_id": checkpoint_key_id(key)}
    body["hmac"] = _signature(key, body)
    AuditCheckpoint.objects.create(
        event_id=body["event_id"], hash=body["hash"], created_at=now,
        key_id=body["key_id"], hmac=body["hmac"],
    )
    return body


def checkpoint_read(text: str):
    """A checkpoint file as an (unsaved) AuditCheckpoint, once its HMAC with
    AUDIT_CHECKPOINT_KEY checks out."""
    from registry_site.models import AuditCheckpoint

    key = checkpoint_key()
    try:
        body = json.loads(text)
    except ValueError:
        raise CheckpointError("it is not JSON") from None
    if not isinstance(body, dict) or set(body) != {*CHECKPOINT_FIELDS, "hmac"}:
        raise CheckpointError(f"it must be an object with exactly the fields "
                              f"{', '.join((*CHECKPOINT_FIELDS, 'hmac'))}")
    if body["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"its format is {body['format']!r}, not {CHECKPOINT_FORMAT!r}")
    if not all(isinstance(body[name], str) and HEX64.fullmatch(body[name])
               for name in ("hash", "hmac")):
        raise CheckpointError("hash and hmac must be 64 hexadecimal characters")
    if not isinstance(body["created_at"], str) or not isinstance(body["key_id"], str):
        raise CheckpointError("created_at and key_id must be text")
    if type(body["event_id"]) is not int or body["event_id"] < 1:
        raise CheckpointError("event_id must be a positive integer")
    if body["key_id"] != checkpoint_key_id(key):
        raise CheckpointError(
            f"it was signed with key {body['key_id']!r}, but AUDIT_CHECKPOINT_KEY is key "
            f"{checkpoint_key_id(key)!r} (the wrong key, or the file was altered)"
        )
    if not hmac.compare_digest(_signature(key, body), body["hmac"]):
        raise CheckpointError("its HMAC does not match its contents (the file was altered)")
    return AuditCheckpoint(**{name: body[name] for name in CHECKPOINT_FIELDS[1:]},
                           hmac=body["hmac"])
