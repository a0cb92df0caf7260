"""Demo users, balances, voting power and proposals for a first look (``manage.py seed_demo``).

Past proposals are made through the real services with their ``now`` argument set in the
past, so every rule still holds: each vote falls inside its voting window and weighs the
voter's power at the snapshot, and the state is derived from those past timestamps like any
other. Nothing is written to a row afterwards. For that, the token holders' power is granted
effective 30 days back.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from fees_app.services import account_credit
from governance_app.models import Proposal, ProposalType
from governance_app.services import (
    proposal_create,
    proposal_execute,
    vote_cast,
    voting_power_grant,
)
from registry_site.parameters import get_parameter
from registry_site.roles import MODERATORS_GROUP

POWER_BACKDATE = timedelta(days=30)

# username, password, role, starting balance, voting power
DEMO_USERS = [
    # The moderator holds just enough power to put other owners' pending models to a vote:
    # a proposal may name only a version its proposer may see.
    ("moderator", "moderator-demo-pass", "moderator", 1_000_000, 1_000),
    ("alice", "alice-demo-pass", "token holder", 5_000_000, 60_000),
    ("bob", "bob-demo-pass", "token holder", 5_000_000, 40_000),
    ("carol", "carol-demo-pass", "registrant", 3_000_000, 0),
]


def seed_users() -> dict:
    """Create the demo users once; return them by username."""
    User = get_user_model()
    moderators = Group.objects.get(name=MODERATORS_GROUP)
    users = {}
    for username, password, role, balance, power in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username)
        users[username] = user
        if not created:
            continue
        user.set_password(password)
        user.email = f"{username}@example.com"
        if role == "moderator":
            user.is_staff = True
        user.save()
        if role == "moderator":
            user.groups.add(moderators)
        account_credit(user=user, amount=balance, reason="Demo starting balance")
        if power:
            voting_power_grant(user=user, power=power, reason="Demo token holder",
                               effective_from=timezone.now() - POWER_BACKDATE)
    return users


ACTIVE_TITLE = "Approve resnet50-imagenet 1.1.0 (int8)"
PASSED_TITLE = "Approve summarizer-t5-small 1.0.0"
FAILED_TITLE = "Halve the registration fee"
EXECUTED_TITLE = "Allow models up to 200 MiB"


def seed_governance(users: dict) -> list[Proposal]:
    """Create the demo proposals once: executed, failed, passed (ready to execute), active.

    Returns them; later runs create nothing and return the existing ones.
    """
    existing = list(Proposal.objects.filter(
        title__in=[ACTIVE_TITLE, PASSED_TITLE, FAILED_TITLE, EXECUTED_TITLE]).order_by("pk"))
    if existing:
        return existing
    alice, bob, moderator = users["alice"], users["bob"], users["moderator"]
    now = timezone.now()
    closed = timedelta(seconds=get_parameter("voting_period_seconds")) + timedelta(hours=2)

    def past(title, proposer, *, type, payload, description, ago, votes):
        created = now - ago
        proposal = proposal_create(proposer=proposer, type=type, title=title,
                                   description=description, payload=payload, now=created)
        for minutes, (voter, choice, reason) in enumerate(votes, start=1):
            vote_cast(proposal=proposal, voter=voter, choice=choice, reason=reason,
                      now=created + timedelta(minutes=30 * minutes))
        return proposal

    executed = past(
        EXECUTED_TITLE, bob, type=ProposalType.PARAMETER_CHANGE, ago=closed + timedelta(days=1),
        payload={"parameter": "max_model_size", "value": 209_715_200,
                 "reason": "Vision and speech models outgrow 100 MiB."},
        description="Raise max_model_size from 100 MiB to 200 MiB.",
        votes=[(bob, "for", ""), (alice, "for", "Agreed; storage fees cover the cost.")],
    )
    proposal_execute(proposal=executed, actor=bob)
    failed = past(
        FAILED_TITLE, bob, type=ProposalType.FEE_CHANGE, ago=closed + timedelta(hours=12),
        payload={"fee_type": "registration", "method": "linear", "base_fee": 500,
                 "unit_fee": 1, "min_fee": 500, "max_fee": 500_000,
                 "reason": "Cheaper registration brings more models in."},
        description="Base fee 1,000 to 500 and cap 1,000,000 to 500,000.",
        votes=[(bob, "for", ""), (alice, "against", "Spam registrations would double.")],
    )
    passed = past(
        PASSED_TITLE, moderator, type=ProposalType.MODEL_APPROVAL, ago=closed,
        payload={"name": "summarizer-t5-small", "version": "1.0.0",
                 "reason": "Model card and license checked; summaries read well."},
        description="Voting has closed and it passed: anyone signed in can execute it.",
        votes=[(alice, "for", "Tried it on our news feed."), (bob, "abstain", "")],
    )
    # alice owns resnet50-imagenet: she may propose it, but her own vote will not count.
    active = proposal_create(
        proposer=alice, type=ProposalType.MODEL_APPROVAL, title=ACTIVE_TITLE,
        description="The int8 build is 4x smaller with the same top-1 accuracy.",
        payload={"name": "resnet50-imagenet", "version": "1.1.0",
                 "reason": "Quantized build of an approved model; accuracy within 0.3%."},
    )
    return [executed, failed, passed, active]
