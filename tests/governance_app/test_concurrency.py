"""Real concurrency on PostgreSQL: row locks keep tallies exact and execution single."""

import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, transaction

from governance_app.models import Proposal, Vote
from governance_app.services import (
    proposal_create,
    proposal_execute,
    vote_cast,
    voting_power_grant,
)
from models_app.models import StatusChange
from registry_site.errors import Conflict, DomainError
from tests.concurrency import run_at_once, without_waiting

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


def _in_thread(job):
    """Run ``job`` in a thread with its own connection; ``result[0]`` is what it returned or
    raised."""
    result = [None]

    def run():
        try:
            result[0] = job()
        except Exception as exc:  # noqa: BLE001  (collected for the assertions)
            result[0] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _wait_until_blocked(thread) -> bool:
    """Poll until some session of this database waits on a lock (or ``thread`` ended).

    A condition, not a delay: the test goes on once PostgreSQL says the request is queued
    behind the lock, however long that takes to happen.
    """
    with connection.cursor() as cursor:
        for _ in range(4_000):
            if not thread.is_alive():
                return False
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                           "'Lock' AND datname = current_database()")
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.005)
    raise AssertionError("the request neither blocked nor finished")


def _hold(locked: threading.Event, release: threading.Event, work):
    """Do ``work`` in a transaction and keep it open (with its locks) until ``release``."""

    def job():
        with transaction.atomic():
            value = work()
            locked.set()
            assert release.wait(30)
        return value

    return job


def test_a_vote_that_waits_for_the_lock_past_the_voting_end_is_refused(make_proposal, bob,
                                                                       clock):
    """Issue 8: the clock was read before the row lock, so a vote queued behind another
    transaction until after voting_ends_at was still accepted."""
    proposal = make_proposal()
    clock.move_to(proposal.voting_ends_at - timedelta(microseconds=1), tick=False)
    locked, release = threading.Event(), threading.Event()
    holder, _ = _in_thread(_hold(locked, release, lambda: Proposal.objects.select_for_update()
                                 .filter(pk=proposal.pk).values_list("pk").get()))
    assert locked.wait(30)
    voter, result = _in_thread(lambda: vote_cast(proposal=proposal, voter=bob, choice="for"))
    assert _wait_until_blocked(voter)
    clock.move_to(proposal.voting_ends_at + timedelta(milliseconds=1), tick=False)
    release.set()
    holder.join()
    voter.join()
    assert isinstance(result[0], Conflict), result[0]
    assert result[0].code == "voting_closed"
    assert Vote.objects.count() == 0


def test_the_snapshot_total_includes_a_grant_committed_while_the_proposal_was_made(
        make_user, alice, bob, moderator, clock):
    """Issue 8: a grant effective before the snapshot but committed after the total was
    summed weighed 1,000,000 in a vote on a proposal whose total did not include it."""
    whale = make_user("whale")
    locked, release = threading.Event(), threading.Event()
    granter, _ = _in_thread(_hold(locked, release, lambda: voting_power_grant(
        user=whale, power=1_000_000, actor=moderator, reason="bought")))
    assert locked.wait(30)
    proposer, created = _in_thread(lambda: proposal_create(
        proposer=alice, type="parameter_change", title="Quorum",
        payload={"parameter": "quorum_bps", "value": 500, "reason": "r"}))
    _wait_until_blocked(proposer)
    release.set()
    granter.join()
    proposer.join()
    proposal = created[0]
    assert isinstance(proposal, Proposal), proposal
    vote = vote_cast(proposal=proposal, voter=whale, choice="for")
    proposal.refresh_from_db()
    assert vote.weight == 1_000_000
    assert proposal.total_power_at_snapshot == 1_100_000
    assert proposal.votes_cast_power <= proposal.total_power_at_snapshot


def test_two_proposals_for_one_version_at_once_give_one(make_proposal, steward, holder,
                                                        pending):
    other = holder("other-mod", power=5_000, moderator=True)
    payload = {"name": pending.name, "version": pending.version, "reason": "r"}
    results = run_at_once([
        lambda p=p: proposal_create(proposer=p, type="model_approval", title="t",
                                    payload=payload) for p in [steward, other] * 3
    ])
    assert sum(isinstance(r, Proposal) for r in results) == 1
    assert all(getattr(r, "code", None) == "duplicate_proposal" for r in results
               if not isinstance(r, Proposal))
    assert Proposal.objects.count() == 1


@contextmanager
def _held_open(work):
    """Run ``work`` in a thread's transaction and keep it open (locks held) inside the block."""
    locked, release = threading.Event(), threading.Event()
    thread, result = _in_thread(_hold(locked, release, work))
    try:
        assert locked.wait(30), result[0]
        yield result
    finally:
        release.set()
        thread.join()


def test_a_voter_does_not_wait_for_another_voters_open_transaction(make_proposal, registrant,
                                                                   bob, clock):
    """Votes locked the proposal FOR UPDATE from their first statement, so every voter of a
    proposal queued behind the others' commits. Now they share a key-share lock and queue
    only for the tally update, their last statement: the owner's uncounted vote, which makes
    no tally update, holds up no one."""
    voting_power_grant(user=registrant, power=5, reason="test power")
    proposal = make_proposal()
    with _held_open(lambda: vote_cast(proposal=proposal, voter=registrant, choice="against")):
        vote = without_waiting(lambda: vote_cast(proposal=proposal, voter=bob, choice="for"))
    assert vote.counted
    proposal.refresh_from_db()
    assert proposal.tally == {"for": 40_000, "against": 0, "abstain": 0}
    assert Vote.objects.get(proposal=proposal, voter=registrant).counted is False


def test_a_vote_does_not_take_the_snapshot_lock(make_proposal, make_user, moderator, bob, clock):
    """Grants and proposal creation serialize on an advisory lock; votes must stay out of it."""
    proposal = make_proposal()
    whale = make_user("whale")
    with _held_open(lambda: voting_power_grant(user=whale, power=10, actor=moderator,
                                               reason="r")):
        assert without_waiting(
            lambda: vote_cast(proposal=proposal, voter=bob, choice="for")).weight == 40_000

