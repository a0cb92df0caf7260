"""Registrations (one row per version of a named model), status history and usage."""

import hashlib

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.utils import timezone

# Names and versions are path segments of the artifact store (artifacts/<name>/<version>/), so
# neither may be "." or "..". Lengths come from max_length.
name_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]{2,}$",
    "3-100 characters: lowercase letters, digits, '-', '_' and '.', starting with a letter or "
    "digit.",
)
version_validator = RegexValidator(
    r"^(?!\.{1,2}$)[A-Za-z0-9.+_-]+$",
    "1-64 characters: letters, digits, '.', '-', '+' and '_'; not '.' or '..'.",
)
hash_validator = RegexValidator(r"^[0-9a-fA-F]{64}$",
                                "The artifact's SHA-256 as 64 hexadecimal characters.")


class Category(models.TextChoices):
    NLP = "NLP", "NLP"
    COMPUTER_VISION = "ComputerVision", "Computer vision"
    SPEECH = "Speech", "Speech"
    RECOMMENDATION = "Recommendation", "Recommendation"
    TIME_SERIES = "TimeSeries", "Time series"
    GENERATIVE = "Generative", "Generative"
    OTHER = "Other", "Other"


class Source(models.TextChoices):
    ADMIN = "admin", "Admin"
    API = "api", "API"
    WEB = "web", "Web page"
    GOVERNANCE = "governance", "Governance"


class ModelName(models.Model):
    """A model name and its owner: the first registrant of a name owns it.

    The row is the lock that serializes registrations of one name, so two concurrent first
    registrations cannot both become owners (their versions would not collide on
    ``(name, version)``).
    """

    name = models.CharField(max_length=100, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="model_names"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.name


# Apps above this one may show more versions to signed-in users without this app importing
# them (governance: a version under an open proposal). Each provider takes the user and the
# time of the read and returns a Q on Registration; register it in the app's
# AppConfig.ready(). The cached model detail (models_app.read_cache) relies on two rules of
# every provider: what it adds is the same for every signed-in user, and a version joins it
# only in a transaction that calls read_cache.model_changed(name) (it may leave at any time).
VISIBILITY_PROVIDERS = []


def register_visibility_provider(provider) -> None:
    if provider not in VISIBILITY_PROVIDERS:
        VISIBILITY_PROVIDERS.append(provider)


def _provider_extras(user, now) -> Q | None:
    """What the providers add for ``user`` at ``now`` (None: nothing)."""
    extras = None
    for provider in VISIBILITY_PROVIDERS:
        extras = provider(user, now) if extras is None else extras | provider(user, now)
    return extras


def member_extras(now) -> Q | None:
    """What the providers add for every signed-in user at ``now`` (None: nothing)."""
    from django.contrib.auth import get_user_model

    member = get_user_model()(pk=0, is_superuser=False)
    member._is_moderator = False
    return _provider_extras(member, now)


class RegistrationQuerySet(models.QuerySet):
    def visible_to(self, user, *, read_only_extras: bool = True, now=None):
        """Approved versions for everyone, plus the caller's own and (``read_only_extras``)
        those the registered providers add for signed-in users at ``now`` (default: now);
        moderators see all.

        The providers' versions are shown, not handed out: artifact downloads pass
        ``read_only_extras=False``, so a file no moderator has approved reaches only its owner.
        """
        from registry_site.roles import is_moderator

        if is_moderator(user):
            return self
        approved = Q(status=Registration.Status.APPROVED)
        if user is not None and user.is_authenticated:
            visible = approved | Q(owner=user)
            extras = _provider_extras(user, now or timezone.now()) if read_only_extras else None
            return self.filter(visible if extras is None else visible | extras)
        return self.filter(approved)

    def with_pending_executions(self):
        """Annotate ``pending_executions``: recorded executions not yet folded into the usage
        row (UsageDelta). Read by the same statement as the usage row, so ``executions`` is
        exact; a correlated count on an index that is almost always empty."""
        pending = (UsageDelta.objects.filter(registration=OuterRef("pk")).order_by()
                   .values("registration").annotate(n=Count("pk")).values("n"))
        return self.annotate(pending_executions=Subquery(pending))

    def with_status_at(self, when):
        """Annotates ``status_then`` and ``status_since``: the status at ``when`` and since
        when it held, from the status history (None for versions registered after it)."""
        latest = (StatusChange.objects.filter(registration=OuterRef("pk"), created_at__lte=when)
                  .order_by("-created_at", "-id"))
        return self.annotate(status_then=Subquery(latest.values("to_status")[:1]),
                             status_since=Subquery(latest.values("created_at")[:1]))


class Registration(models.Model):
    """One version of a named model; ``(name, version)`` is unique."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUSPENDED = "suspended", "Suspended"
        DEPRECATED = "deprecated", "Deprecated"

    # Allowed moves: from status -> set of target statuses.
    TRANSITIONS = {
        Status.PENDING: {Status.APPROVED, Status.REJECTED},
        Status.APPROVED: {Status.SUSPENDED, Status.DEPRECATED},
        Status.SUSPENDED: {Status.APPROVED, Status.DEPRECATED},
        Status.REJECTED: {Status.PENDING},
        Status.DEPRECATED: set(),
    }
    # Moves the owner may make on their own model without being a moderator.
    OWNER_TRANSITIONS = {
        (Status.APPROVED, Status.DEPRECATED),
        (Status.SUSPENDED, Status.DEPRECATED),
    }

    name = models.CharField(
        max_length=100, validators=[name_validator],
        help_text="3-100 chars: lowercase letters, digits, '-', '_', '.'; starts with a letter "
                  "or digit. The first registrant of a name owns it.",
    )
    version = models.CharField(max_length=64, validators=[version_validator],
                               help_text="Semantic versioning recommended, such as 1.0.0.")
    # Indexed by reg_owner_idx, which leads with it.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="registrations",
        db_index=False,
    )
    hash = models.CharField(max_length=64, validators=[hash_validator],
                            help_text="SHA-256 of the artifact, 64 hexadecimal characters.")
    description = models.TextField(blank=True, max_length=5000)
    license = models.CharField(max_length=100, blank=True)
    source_url = models.URLField(max_length=500, blank=True)
    tags = models.JSONField(default=list, blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.NLP)
    architecture = models.CharField(max_length=100, blank=True)
    input_shape = models.JSONField(default=list, blank=True)
    output_shape = models.JSONField(default=list, blank=True)
    size_bytes = models.BigIntegerField(validators=[MinValueValidator(0)])
    parameter_count = models.BigIntegerField(validators=[MinValueValidator(0)])
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    registration_fee = models.BigIntegerField(default=0)
    registered_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = RegistrationQuerySet.as_manager()

    class Meta:
        # PostgreSQL-only GIN indexes (full-text search, tags) are created by a migration that
        # skips other databases.
        ordering = ["name", "-registered_at"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="registration_name_version"),
            models.CheckConstraint(condition=Q(size_bytes__gte=0), name="registration_size"),
            models.CheckConstraint(
                condition=Q(parameter_count__gte=0), name="registration_parameter_count"
            ),
            models.CheckConstraint(
                condition=Q(registration_fee__gte=0), name="registration_fee_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected", "suspended",
                                        "deprecated"]),
                name="registration_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["name", "-registered_at"], name="reg_name_newest_idx"),
            models.Index(fields=["status", "name"], name="reg_status_name_idx"),
            models.Index(fields=["status", "-registered_at"], name="reg_status_newest_idx"),
            models.Index(fields=["-registered_at"], name="reg_newest_idx"),
            models.Index(fields=["category", "status"], name="reg_category_idx"),
            models.Index(fields=["owner", "status"], name="reg_owner_idx"),
            models.Index(fields=["license"], name="reg_license_idx"),
            models.Index(fields=["size_bytes"], name="reg_size_idx"),
            models.Index(fields=["status", "size_bytes"], name="reg_status_size_idx"),
            models.Index(fields=["parameter_count"], name="reg_params_idx"),
        ]

    def __str__(self):
        return f"{self.name} {self.version}"

    @property
    def etag(self) -> str:
        """The version resource's entity tag (ETag, If-Match): every write of the fields it
        shows moves ``updated_at`` (a status move, a metadata edit)."""
        digest = hashlib.sha256(f"{self.pk}:{self.updated_at.isoformat()}".encode())
        return f'"{digest.hexdigest()[:32]}"'

    @property
    def executions(self) -> int:
        """Total executions: the usage row plus any pending ones (with_pending_executions)."""
        usage = self.usage if "usage" in self._state.fields_cache else None
        folded = usage.total_executions if usage is not None else 0
        return folded + (getattr(self, "pending_executions", None) or 0)


class StatusChange(models.Model):
    """One status change of a registration: from, to, who, through what, why, when."""

    # Indexed by status_change_reg_idx, which leads with it.
    registration = models.ForeignKey(
        Registration, on_delete=models.PROTECT, related_name="status_changes", db_index=False,
    )
    from_status = models.CharField(max_length=12, choices=Registration.Status.choices,
                                   blank=True)
    to_status = models.CharField(max_length=12, choices=Registration.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    source = models.CharField(max_length=12, choices=Source.choices)
    reason = models.TextField(blank=True, max_length=2000)
    proposal_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["registration", "created_at"], name="status_change_reg_idx"),
        ]

    def __str__(self):
        return f"{self.registration}: {self.from_status or '∅'} -> {self.to_status}"


class MetadataChange(models.Model):
    """One edit of a version's metadata (description, tags, license, source URL): each
    changed field's value before and after, who, through what, why, when. Edits are free and
    leave the version, its hash and its status as they were."""

    # Indexed by metadata_change_reg_idx, which leads with it.
    registration = models.ForeignKey(
        Registration, on_delete=models.PROTECT, related_name="metadata_changes",
        db_index=False,
    )
    changes = models.JSONField(help_text='{"field": {"from": old, "to": new}, ...}')
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="+")
    source = models.CharField(max_length=12, choices=Source.choices)
    reason = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["registration", "created_at"], name="metadata_change_reg_idx"),
        ]

    def __str__(self):
        return f"{self.registration}: {', '.join(self.changes)}"


class UsageStats(models.Model):
    """Usage counters of one registration, moved only with F() expressions, by the fold.

    The exact figures are this row plus the registration's pending UsageDelta rows
    (models_app.selectors.add_pending_usage).
    """

    COUNTERS = ["total_executions", "successful_executions", "failed_executions",
                "total_fees_collected", "total_duration_us", "unique_users"]

    registration = models.OneToOneField(
        Registration, on_delete=models.PROTECT, related_name="usage", primary_key=True
    )
    total_executions = models.BigIntegerField(default=0)
    successful_executions = models.BigIntegerField(default=0)
    failed_executions = models.BigIntegerField(default=0)
    total_fees_collected = models.BigIntegerField(default=0)
    total_duration_us = models.BigIntegerField(default=0)
    unique_users = models.BigIntegerField(default=0)
    last_execution = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "usage stats"
        # Serves "most executions" ordering: walk this index, join each row's registration.
        indexes = [models.Index(fields=["-total_executions", "-registration"],
                                name="usage_executions_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_executions=F("successful_executions") + F("failed_executions")),
                name="usage_counts_add_up",
            ),
        ]

    def __str__(self):
        return f"usage of {self.registration_id}"

    @property
    def avg_execution_time_us(self) -> int:
        return self.total_duration_us // self.total_executions if self.total_executions else 0


class UsageDelta(models.Model):
    """One recorded execution not yet added to its registration's UsageStats row.

    Recording usage inserts one of these instead of updating the counter row, so users of one
    popular model never queue on that row's lock; ``usage_counters_fold`` moves them into
    UsageStats (right after each commit, and on a schedule for any left over). Readers add the
    rows still here (``add_pending_usage``), so figures are exact at every moment.
    """

    registration = models.ForeignKey(Registration, on_delete=models.PROTECT, related_name="+")
    success = models.BooleanField()
    fee = models.BigIntegerField()
    duration_us = models.BigIntegerField()
    # True when this execution was the user's first of the registration (unique_users + 1).
    new_user = models.BooleanField()
    recorded_at = models.DateTimeField()

    class Meta:
        # The foreign key's index serves the fold and the readers (by registration).
        constraints = [
            models.CheckConstraint(condition=Q(fee__gte=0, duration_us__gte=0),
                                   name="usage_delta_non_negative"),
        ]

    def __str__(self):
        return f"pending usage of {self.registration_id}"


class ModelUser(models.Model):
    """Who has executed a registration: one row per (registration, user), for unique_users."""

    # Indexed by model_user_unique, which leads with it.
    registration = models.ForeignKey(Registration, on_delete=models.PROTECT, related_name="+",
                                     db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    first_used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registration", "user"], name="model_user_unique"),
        ]

    def __str__(self):
        return f"{self.user_id} used {self.registration_id}"


def artifact_path(instance, filename):
    return f"artifacts/{instance.registration.name}/{instance.registration.version}/{filename}"


class Artifact(models.Model):
    """The uploaded file of a registration, stored only after it passed the scan."""

    registration = models.OneToOneField(
        Registration, on_delete=models.PROTECT, related_name="artifact", primary_key=True
    )
    file = models.FileField(upload_to=artifact_path, max_length=300)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    file_format = models.CharField(max_length=32, help_text="What the scanner found it to be.")
    scan_summary = models.TextField(help_text="What the scanner checked and found.")
    scanner = models.CharField(max_length=64, help_text="Scanner and version used.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    # Whole downloads (a 200, or a 206 from the first byte), moved only with F().
    downloads = models.BigIntegerField(default=0)

    def __str__(self):
        return f"artifact of {self.registration_id} ({self.file_format})"


class StorageCharge(models.Model):
    """The storage fee of one approved version for one day; the unique row makes it once."""

    class Status(models.TextChoices):
        PAID = "paid", "Paid"
        UNPAID = "unpaid", "Unpaid (balance too low)"

    # Indexed by storage_charge_once, which leads with it.
    registration = models.ForeignKey(
        Registration, on_delete=models.PROTECT, related_name="storage_charges", db_index=False,
    )
    date = models.DateField()
    amount = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices)
    ledger_entry = models.OneToOneField(
        "fees_app.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-date", "registration_id"]
        constraints = [
            models.UniqueConstraint(fields=["registration", "date"], name="storage_charge_once"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="storage_charge_amount"),
            models.CheckConstraint(
                condition=Q(status="paid", ledger_entry__isnull=False)
                | Q(status="unpaid", ledger_entry__isnull=True),
                name="storage_charge_paid_has_entry",
            ),
        ]
        indexes = [models.Index(fields=["date", "status"], name="storage_charge_date_idx")]

    def __str__(self):
        return f"storage {self.date} {self.registration_id}: {self.amount} ({self.status})"
