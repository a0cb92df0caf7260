"""Cross-cutting tables: the audit trail, API tokens, governable parameters."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class AuditEvent(models.Model):
    """One append-only, hash-chained record of a state change or a security event.

    A row is written unsealed (no ``seq``, ``prev_hash`` or ``hash``) inside the transaction of
    the change it records; the sealer (audit_seal) later gives it its place on the chain. Once
    sealed, PostgreSQL refuses any UPDATE or DELETE of it (migration 0004's trigger).
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="audit_events",
    )
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # The position on the chain, in commit order as the sealer saw it (not id order: a
    # transaction that commits late gets a later position than higher ids sealed before).
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    prev_hash = models.CharField(max_length=64, null=True, blank=True)
    hash = models.CharField(max_length=64, null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            # Declared here rather than with db_index/unique on the field: on PostgreSQL those
            # add a second, pattern-ops index for LIKE queries, which nothing runs on an action
            # or a hash, and every audited write and every seal paid for it.
            models.Index(fields=["action"], name="audit_action_idx"),
            # The sealer's work list: small, whatever the size of the trail.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="audit_unsealed_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["hash"], name="audit_hash_unique"),
            # Sealed means all three set; unsealed, none.
            models.CheckConstraint(
                condition=(Q(seq__isnull=True, prev_hash__isnull=True, hash__isnull=True)
                           | Q(seq__gte=1, prev_hash__isnull=False, hash__isnull=False)),
                name="audit_sealed_whole",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.action} {self.target_type}:{self.target_id}"


class AuditChainHead(models.Model):
    """A single row holding the newest sealed position and hash. Only the sealer writes it,
    so audited transactions never wait on it."""

    last_hash = models.CharField(max_length=64)
    last_seq = models.BigIntegerField(default=0)
    # Events sealed before chain positions were hashed (migration 0004): positions up to this
    # one are checked with the digest they were sealed with, which did not cover the position.
    legacy_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="audit_head_singleton")]

    def __str__(self):
        return self.last_hash


class AuditCheckpoint(models.Model):
    """A signed checkpoint, as audit_checkpoint printed it; the printed copy kept elsewhere is
    the proof, this one lets verify_audit_log check the chain against it every time."""

    # Not a foreign key: the checkpoint must outlive the event it names, to report its loss.
    event_id = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    hmac = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"event {self.event_id} at {self.created_at}"


class Scope(models.TextChoices):
    READ = "read", "Read"
    REGISTER = "register", "Register models"
    USAGE = "usage", "Record usage"
    VOTE = "vote", "Vote"
    PROPOSE = "propose", "Create proposals"
    MODERATE = "moderate", "Moderate"


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiToken(models.Model):
    """A personal access token; only the SHA-256 digest of the secret is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token.")
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class Parameter(models.Model):
    """The current value of one governable parameter (definitions live in parameters.py)."""

    name = models.CharField(max_length=64, unique=True)
    value = models.BigIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.name}={self.value}"


class ParameterChange(models.Model):
    """History of parameter changes: who, why, and which proposal if governance did it."""

    parameter = models.ForeignKey(Parameter, on_delete=models.PROTECT, related_name="changes")
    old_value = models.BigIntegerField()
    new_value = models.BigIntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    proposal_id = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.parameter_id}: {self.old_value} -> {self.new_value}"


class IdempotencyKey(models.Model):
    """The first answer to one user's ``Idempotency-Key`` on a POST (registry_site.idempotency).

    Neither the key nor the request is stored in the clear: ``key_digest`` is the key's SHA-256
    and ``fingerprint`` a keyed hash of the method, path and body (which may hold a password).
    The answer is encrypted with a key derived from the client's key and the server's secret,
    so a copy of this table does not give out what the answers carried (a token's secret).
    """

    # No index of its own: the unique constraint's index starts with the user.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+", db_index=False)
    key_digest = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # Set in the transaction that did the work, so no other transaction ever sees a row
    # without them (the claim and the answer commit together, or neither does).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key_digest"], name="idempotency_key_unique"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expiry_idx")]

    def __str__(self):
        return f"{self.key_digest[:12]}… of user {self.user_id}"
