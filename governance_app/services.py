"""Every write on governance: voting power, proposals, votes, execution."""

from django.db import transaction
from django.utils import timezone

from governance_app.models import VotingPowerCheckpoint
from governance_app.selectors import voting_power_at
from registry_site.audit import audit_record
from registry_site.errors import InvalidInput

MAX_VOTING_POWER = 10**15


def voting_power_grant(*, user, power: int, actor=None, reason: str = "",
                       effective_from=None) -> VotingPowerCheckpoint:
    """Set a user's voting power from now on (a new checkpoint; earlier ones stay)."""
    if isinstance(power, bool) or not isinstance(power, int) or not 0 <= power <= MAX_VOTING_POWER:
        raise InvalidInput({"power": f"Must be an integer between 0 and {MAX_VOTING_POWER}."})
    with transaction.atomic():
        previous = voting_power_at(user)
        checkpoint = VotingPowerCheckpoint.objects.create(
            user=user, power=power, effective_from=effective_from or timezone.now(),
            granted_by=actor, reason=reason,
        )
        audit_record(action="voting_power.granted", actor=actor, target=checkpoint,
                     details={"user": user.get_username(), "previous": previous,
                              "power": power, "reason": reason})
    return checkpoint
