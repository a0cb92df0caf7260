"""The cached model detail and versions under open proposals (models_app.read_cache).

Signed-in callers who own nothing of a model share its anonymous answer only while no open
proposal shows them a version anonymous callers do not see.
"""

import pytest

from governance_app.models import ProposalType
from governance_app.services import proposal_create
from models_app.models import Registration, Source
from models_app.read_cache import cached_member_answer, store_answer
from models_app.services import registration_transition
from tests.governance_app.conftest import EXECUTION_PERIOD, VOTING_PERIOD

URL = "/api/v1/models/sentiment-mini/"


@pytest.fixture
def model(make_registration, steward, django_capture_on_commit_callbacks):
    """carol's sentiment-mini: 1.0.0 approved, 2.0.0 pending."""
    with django_capture_on_commit_callbacks(execute=True):
        first = make_registration()
        registration_transition(registration=first, to_status=Registration.Status.APPROVED,
                                actor=steward, source=Source.ADMIN, reason="checked")
        return make_registration(version="2.0.0")


def propose(steward, model):
    return proposal_create(proposer=steward, type=ProposalType.MODEL_APPROVAL,
                           title="Approve 2.0.0",
                           payload={"name": model.name, "version": model.version,
                                    "reason": "Looks good"})


def test_a_proposal_shows_its_version_at_once_and_hides_it_when_it_closes(
        model, alice, steward, client_for, anon_client, clock,
        django_capture_on_commit_callbacks):
    reader = client_for(alice)
    assert reader.get(URL).json()["version"] == "1.0.0"
    assert reader.get(URL).json()["version"] == "1.0.0"  # the shared answer
    with django_capture_on_commit_callbacks(execute=True):
        propose(steward, model)
    # Voters may open what they vote on: not the answer cached before the proposal.
    assert reader.get(URL).json()["version"] == "2.0.0"
    assert anon_client.get(URL).json()["version"] == "1.0.0"
    # Past the execution deadline nothing is open, with no write: the pending version is
    # hidden from signed-in callers again.
    clock.shift((VOTING_PERIOD + EXECUTION_PERIOD).total_seconds() + 60)
    assert client_for(alice).get(URL).json()["version"] == "1.0.0"  # (the old token expired)


def test_a_members_view_read_before_a_proposal_commits_is_never_used_after_it(
        model, alice, steward, client_for, django_capture_on_commit_callbacks):
    variant = "http://testserver|None"
    # A slow reader reads the generation and the members' view (nothing extra yet) ...
    content, generation, shared = cached_member_answer(model.name, variant, user_id=alice.pk)
    assert (content, shared) == (None, True)
    with django_capture_on_commit_callbacks(execute=True):
        propose(steward, model)
    # ... and stores the anonymous answer after the proposal committed: under the old
    # generation, which no later read serves.
    store_answer(model.name, variant, generation, b'{"stale": true}')
    assert client_for(alice).get(URL).json()["version"] == "2.0.0"


def test_an_owner_sees_their_pending_version_whatever_is_cached(
        model, registrant, alice, client_for, anon_client):
    assert anon_client.get(URL).json()["version"] == "1.0.0"
    assert client_for(alice).get(URL).json()["version"] == "1.0.0"
    assert client_for(registrant).get(URL).json()["version"] == "2.0.0"
