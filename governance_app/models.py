"""Voting power, proposals and votes."""

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone


class VotingPowerCheckpoint(models.Model):
    """A user's voting power from ``effective_from`` on, until their next checkpoint."""

    # Indexed by power_user_time_idx, which leads with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="power_checkpoints",
        db_index=False,
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


class ProposalType(models.TextChoices):
    MODEL_APPROVAL = "model_approval", "Model approval"
    FEE_CHANGE = "fee_change", "Fee change"
    PARAMETER_CHANGE = "parameter_change", "Parameter change"
    EMERGENCY = "emergency", "Emergency action"


class ProposalState(models.TextChoices):
    ACTIVE = "active", "Active"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    EXECUTED = "executed", "Executed"
    CANCELED = "canceled", "Canceled"


class EmergencyAction(models.TextChoices):
    SUSPEND_MODEL = "suspend_model", "Suspend a model"
    PAUSE_REGISTRATIONS = "pause_registrations", "Pause registrations"
    RESUME_REGISTRATIONS = "resume_registrations", "Resume registrations"


def passed_condition() -> Q:
    """The vote outcome of SPEC 5.3: more for than against, and for + abstain reach quorum."""
    return Q(votes_for__gt=F("votes_against")) & Q(
        quorum__lte=F("votes_for") + F("votes_abstain")
    )


def state_expression(now) -> Case:
    """The proposal's state at ``now``, computed by the database from the clock and tallies.

    This is the one definition of the state: the API, the pages, the admin and the services
    (under the row lock) all read it, so a proposal never shows a stale flag. ``now`` is
    passed in rather than taken from the database clock so that every process, and tests
    that move the clock, agree on it.
    """
    return Case(
        When(canceled_at__isnull=False, then=Value(ProposalState.CANCELED)),
        When(executed_at__isnull=False, then=Value(ProposalState.EXECUTED)),
        When(voting_ends_at__gt=now, then=Value(ProposalState.ACTIVE)),
        When(passed_condition() & Q(execution_deadline__gt=now),
             then=Value(ProposalState.PASSED)),
        When(passed_condition(), then=Value(ProposalState.EXPIRED)),
        default=Value(ProposalState.FAILED),
        output_field=models.CharField(max_length=10),
    )


class ProposalQuerySet(models.QuerySet):
    def with_state(self, now=None):
        """Annotate ``state`` as of ``now`` (the current time by default)."""
        return self.annotate(state=state_expression(now or timezone.now()))

    def in_state(self, state: str, now=None):
        """Only proposals in ``state`` at ``now``: a SQL condition, not a Python loop."""
        return self.alias(_state=state_expression(now or timezone.now())).filter(_state=state)


class Proposal(models.Model):
    """A governance proposal; its snapshot, deadlines and quorum are fixed at creation."""

    type = models.CharField(max_length=20, choices=ProposalType.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=10_000)
    payload = models.JSONField(help_text="The typed content, validated at creation.")
    # Indexed by proposal_proposer_idx, which leads with it.
    proposer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="proposals",
        db_index=False,
    )
    created_at = models.DateTimeField(
        default=timezone.now, help_text="Also the snapshot time for voting power."
    )
    voting_ends_at = models.DateTimeField()
    execution_deadline = models.DateTimeField()
    total_power_at_snapshot = models.BigIntegerField()
    quorum = models.BigIntegerField(help_text="Absolute voting power for + abstain must reach.")
    # Tallies move only with F() under the proposal's row lock, in vote_cast.
    votes_for = models.BigIntegerField(default=0)
    votes_against = models.BigIntegerField(default=0)
    votes_abstain = models.BigIntegerField(default=0)
    executed_at = models.DateTimeField(null=True, blank=True)
    executed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    execution_result = models.JSONField(default=dict, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    canceled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    cancel_reason = models.TextField(blank=True, max_length=2000)

    objects = ProposalQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="proposal_newest_idx"),
            models.Index(fields=["type", "-created_at"], name="proposal_type_idx"),
            models.Index(fields=["proposer", "-created_at"], name="proposal_proposer_idx"),
            models.Index(fields=["voting_ends_at"], name="proposal_voting_end_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(type__in=ProposalType.values), name="proposal_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(votes_for__gte=0, votes_against__gte=0, votes_abstain__gte=0),
                name="proposal_tallies_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(quorum__gte=1, total_power_at_snapshot__gte=F("quorum")),
                name="proposal_quorum_bounds",
            ),
            models.CheckConstraint(
                condition=Q(voting_ends_at__gt=F("created_at"),
                            execution_deadline__gt=F("voting_ends_at")),
                name="proposal_deadlines_ordered",
            ),
            # A proposal ends at most once: executed or canceled, never both.
            models.CheckConstraint(
                condition=Q(executed_at__isnull=True) | Q(canceled_at__isnull=True),
                name="proposal_single_outcome",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.title}"

    @property
    def quorum_reached(self) -> bool:
        return self.votes_for + self.votes_abstain >= self.quorum

    @property
    def votes_cast_power(self) -> int:
        return self.votes_for + self.votes_against + self.votes_abstain

    @property
    def tally(self) -> dict[str, int]:
        return {"for": self.votes_for, "against": self.votes_against,
                "abstain": self.votes_abstain}


class Vote(models.Model):
    """One voter's weighted vote on one proposal; the weight is their power at the snapshot."""

    class Choice(models.TextChoices):
        FOR = "for", "For"
        AGAINST = "against", "Against"
        ABSTAIN = "abstain", "Abstain"

    # Indexed by vote_proposal_idx and vote_one_per_voter, which lead with it.
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="votes",
                                 db_index=False)
    voter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="votes"
    )
    choice = models.CharField(max_length=7, choices=Choice.choices)
    weight = models.BigIntegerField()
    # False for the owner of the model the proposal is about (SPEC 10.2): the vote and its
    # weight are recorded and shown, but the tally and the quorum leave it out.
    counted = models.BooleanField(default=True)
    reason = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["proposal", "voter"], name="vote_one_per_voter"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="vote_weight_positive"),
            models.CheckConstraint(
                condition=Q(choice__in=["for", "against", "abstain"]), name="vote_choice_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["proposal", "-created_at"], name="vote_proposal_idx"),
        ]

    def __str__(self):
        return f"{self.voter} {self.choice} #{self.proposal_id} ({self.weight})"
