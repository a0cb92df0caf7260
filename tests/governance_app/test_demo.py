"""The demo data: every proposal state a newcomer should see, created once."""

import pytest
from django.core.management import call_command

from governance_app.models import Proposal
from governance_app.services import proposal_execute
from models_app.models import Registration, StatusChange
from registry_site.audit import audit_verify
from registry_site.parameters import get_parameter

pytestmark = pytest.mark.django_db


def test_seed_demo_walks_the_lifecycle(capsys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo")
    call_command("seed_demo")
    states = {p.title: p.state for p in Proposal.objects.with_state()}
    assert states == {
        "Allow models up to 200 MiB": "executed",
        "Halve the registration fee": "failed",
        "Approve summarizer-t5-small 1.0.0": "passed",
        "Approve resnet50-imagenet 1.1.0 (int8)": "active",
    }
    assert get_parameter("max_model_size") == 209_715_200
    assert "/proposals/" in capsys.readouterr().out

    ready = Proposal.objects.get(title="Approve summarizer-t5-small 1.0.0")
    proposal_execute(proposal=ready, actor=ready.proposer)
    model = Registration.objects.get(name="summarizer-t5-small", version="1.0.0")
    assert model.status == "approved"
    assert StatusChange.objects.filter(registration=model).first().source == "governance"
    assert audit_verify()[1] is None
