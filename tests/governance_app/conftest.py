"""Governance fixtures: token holders with voting power, registrations, proposals, a clock."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from governance_app.models import ProposalType
from governance_app.services import proposal_create, vote_cast, voting_power_grant
from models_app.services import registration_create
from registry_site.services import parameter_set

START = datetime(2030, 1, 6, 12, 0, tzinfo=UTC)
VOTING_PERIOD = timedelta(seconds=604_800)
EXECUTION_PERIOD = timedelta(seconds=1_209_600)


@pytest.fixture
def clock(time_machine):
    """A frozen clock at START; ``clock.shift(seconds)`` moves it."""
    time_machine.move_to(START, tick=False)
    return time_machine


@pytest.fixture
def holder(make_user, clock):
    """Make a user with a balance and voting power (granted now, so it counts from now)."""

    def make(username=None, *, power=1_000, balance=1_000_000, **kwargs):
        user = make_user(username, balance=balance, **kwargs)
        if power:
            voting_power_grant(user=user, power=power, reason="test power")
        return user

    return make


@pytest.fixture
def alice(holder):
    # An ordinary token holder: she cannot see carol's pending version (only its owner and
    # moderators can), so a model approval of it is proposed by ``steward``.
    return holder("alice", power=60_000)


@pytest.fixture
def bob(holder):
    return holder("bob", power=40_000)


@pytest.fixture
def steward(holder):
    """A moderator with the least power that may propose: names versions alice cannot see."""
    return holder("dora", power=1_000, moderator=True)


@pytest.fixture
def registrant(make_user):
    return make_user("carol", balance=5_000_000)


@pytest.fixture
def make_registration(registrant):
    def make(name="sentiment-mini", version="1.0.0", *, owner=None, size_bytes=1024):
        return registration_create(
            owner=owner or registrant, name=name, version=version,
            hash=hashlib.sha256(f"{name}{version}".encode()).hexdigest(),
            size_bytes=size_bytes, parameter_count=1000,
        )

    return make


@pytest.fixture
def pending(make_registration):
    return make_registration()


@pytest.fixture
def make_proposal(alice, steward, pending):
    """A model_approval proposal for the pending registration unless told otherwise, proposed
    by ``steward`` (who may see carol's pending version); any other type by alice."""

    def make(*, proposer=None, type=ProposalType.MODEL_APPROVAL, payload=None, title="Approve it"):
        if payload is None:
            payload = {"name": pending.name, "version": pending.version, "reason": "Looks good"}
        if proposer is None:
            proposer = steward if type == ProposalType.MODEL_APPROVAL else alice
        return proposal_create(proposer=proposer, type=type, title=title, payload=payload)

    return make


@pytest.fixture
def passed(make_proposal, alice, clock):
    """A proposal alice proposed and voted for, with its voting period over."""

    def make(**kwargs):
        proposal = make_proposal(**kwargs)
        vote_cast(proposal=proposal, voter=alice, choice="for")
        clock.shift(VOTING_PERIOD)
        return proposal

    return make


@pytest.fixture
def set_parameter(django_capture_on_commit_callbacks):
    """Change a parameter as an operator; runs the on-commit cache bust the test transaction
    would otherwise never reach."""

    def change(name, value):
        with django_capture_on_commit_callbacks(execute=True):
            parameter_set(name=name, value=value, reason="test")

    return change
