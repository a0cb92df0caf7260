"""Demo users, balances and voting power for a first look (``manage.py seed_demo``)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from fees_app.services import account_credit
from governance_app.services import voting_power_grant
from registry_site.roles import MODERATORS_GROUP

# username, password, role, starting balance, voting power
DEMO_USERS = [
    ("moderator", "moderator-demo-pass", "moderator", 1_000_000, 0),
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
            voting_power_grant(user=user, power=power, reason="Demo token holder")
    return users
