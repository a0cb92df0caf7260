"""A small seed is consistent, and its users can make every write the load makes."""

import json

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from benchmarks_app.management.commands.bench_seed import refusal
from benchmarks_app.scenarios import BY_NAME, Context, fill
from benchmarks_app.seed import (
    WRITERS,
    Seeder,
    bench_secret,
    check_invariants,
    ensure_open_proposals,
    writer_model,
    writer_name,
)
from fees_app.models import Account, LedgerEntry
from governance_app.models import Proposal, Vote
from models_app.models import ModelName, Registration, UsageStats

pytestmark = pytest.mark.django_db

MODELS = 40


@pytest.fixture
def seeded(capsys):
    Seeder(MODELS).run()
    capsys.readouterr()


def context_for(threads=2, pool=64, open_per_thread=3) -> Context:
    pools = [[(writer_name(i), bench_secret(writer_name(i)), writer_model(i))
              for i in range(t * pool, (t + 1) * pool)] for t in range(threads)]
    opened = list(Proposal.objects.filter(title__startswith="Bench open")
                  .order_by("id").values_list("id", flat=True))
    names = list(Registration.objects.filter(status="approved")
                 .exclude(name__startswith="bench-writer-").values_list("name", flat=True))
    return Context(names=names, words=["model"], proposals=[1], pools=pools,
                   open_proposals=[opened[t * open_per_thread:(t + 1) * open_per_thread]
                                   for t in range(threads)], run_tag="t1")


def test_balances_equal_ledgers_and_tallies_equal_votes(seeded):
    assert check_invariants() == []
    assert ModelName.objects.count() == MODELS + WRITERS
    assert Registration.objects.count() == UsageStats.objects.count()
    # Every registration paid a fee: one debit each, on top of one credit per account.
    assert LedgerEntry.objects.filter(kind="debit").count() == Registration.objects.count()
    assert LedgerEntry.objects.filter(kind="credit").count() == Account.objects.count()
    assert Vote.objects.exists()
    assert Proposal.objects.filter(votes_for__gt=0).exists()


def test_the_invariant_check_sees_a_wrong_balance_and_a_wrong_tally(seeded):
    account = Account.objects.first()
    Account.objects.filter(pk=account.pk).update(balance=account.balance + 1)
    proposal = Proposal.objects.filter(votes__isnull=False).first()
    Proposal.objects.filter(pk=proposal.pk).update(votes_for=proposal.votes_for + 7)
    problems = check_invariants()
    assert any(f"account {account.pk}:" in p for p in problems)
    assert any(f"proposal {proposal.pk} votes_for" in p for p in problems)


def test_open_proposals_are_topped_up_not_duplicated(seeded):
    assert ensure_open_proposals(5) == 5
    assert ensure_open_proposals(3) == 5
    assert Proposal.objects.filter(title__startswith="Bench open").count() == 5


def send(line_scenario, context, thread, k):
    values, secret = context.values(thread, k)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    path = fill(line_scenario.path, values)
    body = fill(line_scenario.body, values)
    return client.generic(line_scenario.method, path, json.dumps(body),
                          content_type="application/json")


@pytest.mark.parametrize("name", ["usage", "register", "vote"])
def test_seeded_writers_make_each_write_of_the_load(seeded, name):
    ensure_open_proposals(6)
    context = context_for()
    scenario = BY_NAME[name]
    for thread, k in [(0, 0), (0, 1), (1, 0), (0, 64), (1, 64)]:
        answer = send(scenario, context, thread, k)
        assert answer.status_code == 201, answer.content
    assert check_invariants() == []


def test_seeded_tokens_authenticate_their_writer(seeded):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {bench_secret(writer_name(3))}")
    answer = client.get("/api/v1/account/")
    assert answer.status_code == 200
    assert answer.json()["username"] == writer_name(3)
    assert get_user_model().objects.filter(username__startswith="bench-writer-").count() == WRITERS


def test_seed_refuses_other_databases():
    assert "PostgreSQL only" in refusal("sqlite", "db.sqlite3")
    assert "contains 'bench'" in refusal("postgresql", "ai_registry")
    assert refusal("postgresql", "ai_registry_bench_1000") is None
