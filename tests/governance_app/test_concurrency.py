"""Real concurrency on PostgreSQL: row locks keep tallies exact and execution single."""

import pytest

from governance_app.models import Proposal, Vote
from governance_app.services import proposal_execute, vote_cast, voting_power_grant
from models_app.models import StatusChange
from registry_site.errors import DomainError
from tests.concurrency import run_at_once

# serialized_rollback puts back the rows data migrations made (fee schedules, groups) after
# the flush that ends each transactional test.
pytestmark = [pytest.mark.postgres,
              pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_fifty_voters_at_once_give_exact_tallies(make_user, make_proposal, clock):
    voters = []
    for n in range(50):
        voter = make_user(f"voter{n}")
        voting_power_grant(user=voter, power=n + 1, reason="test")
        voters.append(voter)
    proposal = make_proposal()
    choices = ["for", "against", "abstain"]
    results = run_at_once([
        (lambda v=v, c=choices[i % 3]: vote_cast(proposal=proposal, voter=v, choice=c))
        for i, v in enumerate(voters)
    ])
    assert all(isinstance(r, Vote) for r in results), results
    proposal.refresh_from_db()
    expected = {c: sum(n + 1 for n in range(50) if n % 3 == i) for i, c in enumerate(choices)}
    assert proposal.tally == expected
    assert Vote.objects.filter(proposal=proposal).count() == 50


def test_one_voter_ten_times_at_once_leaves_one_vote(make_proposal, alice, clock):
    proposal = make_proposal()
    results = run_at_once([
        lambda: vote_cast(proposal=proposal, voter=alice, choice="for") for _ in range(10)
    ])
    assert sum(isinstance(r, Vote) for r in results) == 1
    assert all(getattr(r, "code", None) == "already_voted" for r in results
               if not isinstance(r, Vote))
    proposal.refresh_from_db()
    assert proposal.tally["for"] == 60_000
    assert Vote.objects.count() == 1


def test_five_executions_at_once_give_one_effect(passed, alice, bob, pending):
    proposal = passed()
    results = run_at_once([
        lambda: proposal_execute(proposal=proposal, actor=bob) for _ in range(5)
    ])
    assert sum(isinstance(r, Proposal) for r in results) == 1
    assert all(isinstance(r, DomainError) and r.code == "not_executable" for r in results
               if not isinstance(r, Proposal))
    assert StatusChange.objects.filter(registration=pending, to_status="approved").count() == 1
    pending.refresh_from_db()
    assert pending.status == "approved"
