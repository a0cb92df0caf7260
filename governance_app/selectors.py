"""Reads of voting power at a moment in time."""

from django.db.models import OuterRef, Subquery, Sum
from django.utils import timezone

from governance_app.models import VotingPowerCheckpoint


def voting_power_at(user, when=None) -> int:
    """The user's power at ``when`` (now by default): their latest checkpoint not after it."""
    when = when or timezone.now()
    power = (
        VotingPowerCheckpoint.objects.filter(user=user, effective_from__lte=when)
        .order_by("-effective_from", "-id").values_list("power", flat=True).first()
    )
    return power or 0


def total_voting_power_at(when) -> int:
    """Sum over users of each one's latest checkpoint not after ``when``."""
    latest = (
        VotingPowerCheckpoint.objects.filter(user=OuterRef("user"), effective_from__lte=when)
        .order_by("-effective_from", "-id").values("pk")[:1]
    )
    return (
        VotingPowerCheckpoint.objects.filter(pk=Subquery(latest))
        .aggregate(total=Sum("power"))["total"] or 0
    )
