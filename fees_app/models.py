"""Fee schedules, accounts and the ledger. Money is an integer in the smallest unit."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from fees_app.calculator import MAX_UNIT_FEE, FeeTerms


class FeeType(models.TextChoices):
    REGISTRATION = "registration", "Registration"
    EXECUTION = "execution", "Execution"
    STORAGE = "storage", "Storage"
    PROPOSAL = "proposal", "Proposal"
    UPDATE = "update", "Update"


class FeeScheduleQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class FeeSchedule(models.Model):
    """One version of the schedule for a fee type; exactly one version per type is active."""

    class Method(models.TextChoices):
        FIXED = "fixed", "Fixed"
        LINEAR = "linear", "Linear"
        LOGARITHMIC = "logarithmic", "Logarithmic"
        STEP = "step", "Step"

    fee_type = models.CharField(max_length=16, choices=FeeType.choices)
    version = models.PositiveIntegerField()
    method = models.CharField(max_length=16, choices=Method.choices)
    base_fee = models.BigIntegerField(validators=[MinValueValidator(0)])
    unit_fee = models.BigIntegerField(validators=[MinValueValidator(0),
                                                  MaxValueValidator(MAX_UNIT_FEE)])
    min_fee = models.BigIntegerField(validators=[MinValueValidator(0)])
    max_fee = models.BigIntegerField(validators=[MinValueValidator(0)])
    step_size = models.BigIntegerField(default=1000, validators=[MinValueValidator(1)])
    is_active = models.BooleanField(default=True)
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    proposal_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = FeeScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["fee_type", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["fee_type", "version"], name="fee_schedule_version"),
            models.UniqueConstraint(
                fields=["fee_type"], condition=Q(is_active=True), name="fee_schedule_one_active"
            ),
            models.CheckConstraint(
                condition=Q(base_fee__gte=0, unit_fee__gte=0, min_fee__gte=0, max_fee__gte=0),
                name="fee_schedule_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(min_fee__lte=F("max_fee"), base_fee__gte=F("min_fee"),
                            base_fee__lte=F("max_fee")),
                name="fee_schedule_bounds",
            ),
            models.CheckConstraint(
                condition=Q(unit_fee__lte=MAX_UNIT_FEE), name="fee_schedule_unit_fee_cap"
            ),
            models.CheckConstraint(condition=Q(step_size__gte=1), name="fee_schedule_step_size"),
        ]

    def __str__(self):
        return f"{self.fee_type} v{self.version} ({self.method})"

    @property
    def terms(self) -> FeeTerms:
        return FeeTerms(
            method=self.method, base_fee=self.base_fee, unit_fee=self.unit_fee,
            min_fee=self.min_fee, max_fee=self.max_fee, step_size=self.step_size,
        )


class Account(models.Model):
    """A user's balance; the database keeps it at or above zero."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="account"
    )
    balance = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="account_balance_non_negative")
        ]

    def __str__(self):
        return f"{self.user} ({self.balance})"


class LedgerEntry(models.Model):
    """One credit or debit; an account's balance always equals the sum of its entries."""

    class Kind(models.TextChoices):
        CREDIT = "credit", "Credit"
        DEBIT = "debit", "Debit"

    # Indexed by ledger_account_idx, which leads with it (an index of its own would only be
    # one more to write on every charge).
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries",
                                db_index=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    fee_type = models.CharField(max_length=16, choices=FeeType.choices, blank=True)
    schedule = models.ForeignKey(
        FeeSchedule, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    units = models.BigIntegerField(null=True, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0) | Q(kind="debit", amount=0), name="ledger_amount_positive"
            ),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="ledger_balance_after"),
            models.CheckConstraint(
                condition=Q(kind="credit") | ~Q(fee_type="") & Q(schedule__isnull=False),
                name="ledger_debit_names_fee",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="ledger_account_idx"),
            models.Index(fields=["fee_type", "created_at"], name="ledger_fee_type_idx"),
            models.Index(fields=["model_name", "model_version"], name="ledger_model_idx"),
        ]

    def __str__(self):
        return f"{self.kind} {self.amount} ({self.fee_type or self.reason})"

    @property
    def signed_amount(self) -> int:
        return self.amount if self.kind == self.Kind.CREDIT else -self.amount
