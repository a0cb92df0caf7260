"""The demo data: every proposal state a newcomer should see, created once, and never on a
production database by accident."""

import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from governance_app.models import Proposal
from governance_app.services import proposal_execute
from models_app.models import Registration, StatusChange
from registry_site.audit import audit_verify
from registry_site.parameters import get_parameter

pytestmark = pytest.mark.django_db


def test_seed_demo_walks_the_lifecycle(capsys, django_capture_on_commit_callbacks, settings):
    settings.DEBUG = True
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


def test_seed_demo_refuses_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo")
    assert refused.value.returncode == 1
    assert str(refused.value) == (
        "Refusing to load demo data with DJANGO_DEBUG off: it creates a staff user with a known "
        "password and backdated voting power. Run it on a development database, or pass --force "
        "if this database really is a throwaway demo."
    )
    assert not get_user_model().objects.exists()
    assert not Registration.objects.exists()
    assert not Proposal.objects.exists()


def test_seed_demo_runs_with_debug_off_when_forced(settings):
    settings.DEBUG = False
    call_command("seed_demo", "--force")
    assert get_user_model().objects.filter(username="moderator", is_staff=True).exists()
    assert Proposal.objects.count() == 4


def test_seed_demo_exits_non_zero_in_production_settings(settings):
    """What an operator sees: manage.py with DJANGO_DEBUG=0 prints the reason and exits 1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(DJANGO_SETTINGS_MODULE="registry_site.settings", DJANGO_DEBUG="0",
               DJANGO_SECRET_KEY="x" * 60, DJANGO_ALLOWED_HOSTS="registry.example",
               REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    result = subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=settings.BASE_DIR,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Refusing to load demo data with DJANGO_DEBUG off" in result.stderr
    assert result.stdout == ""
