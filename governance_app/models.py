"""Voting power, proposals and votes."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class VotingPowerCheckpoint(models.Model):
    """A user's voting power from ``effective_from`` on, until their next checkpoint."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="power_checkpoints"
    )
    power = models.BigIntegerField()
    effective_from = models.DateTimeField(default=timezone.now)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-effective_from", "-id"]
        indexes = [
            models.Index(fields=["user", "-effective_from", "-id"], name="power_user_time_idx"),
            models.Index(fields=["effective_from"], name="power_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(power__gte=0), name="power_non_negative"),
        ]

    def __str__(self):
        return f"{self.user}: {self.power} from {self.effective_from:%Y-%m-%d %H:%M}"
