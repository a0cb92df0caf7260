"""Demo data and the Prometheus gauges."""

import pytest
from django.db.models import Count, Q

from accounts_app.demo import seed_users
from fees_app.models import LedgerEntry
from models_app.demo import DEMO_MODELS, seed_models
from models_app.models import Category, Registration, UsageDelta, UsageStats
from registry_site.metrics import render_metrics


@pytest.fixture
def demo_users(db):
    return seed_users()


def test_seed_models_is_realistic_and_idempotent(demo_users):
    balances = {name: user.account.balance for name, user in demo_users.items()}
    seed_models(demo_users)
    assert Registration.objects.count() == len(DEMO_MODELS)
    by_status = dict(Registration.objects.values_list("status").annotate(n=Count("pk")))
    assert set(by_status) == set(Registration.Status.values)
    assert by_status["pending"] >= 3
    assert set(Registration.objects.values_list("category", flat=True)) == set(Category.values)
    owners = set(Registration.objects.values_list("owner__username", flat=True))
    assert {"carol", "alice"} <= owners and "moderator" not in owners
    used = UsageStats.objects.filter(Q(total_executions__gt=0) | Q(
        registration__in=UsageDelta.objects.values("registration")))
    assert used.count() >= 10
    assert LedgerEntry.objects.filter(fee_type="execution").exists()
    # Owners were funded for their registrations; their starting balances are kept.
    for name in ["carol", "alice"]:
        demo_users[name].account.refresh_from_db()
        assert demo_users[name].account.balance <= balances[name]
    seed_models(demo_users)
    assert Registration.objects.count() == len(DEMO_MODELS)


def test_metrics_report_registrations_and_executions(approved, client_for, other_user):
    client_for(other_user).post("/api/v1/models/bert-base/usage/",
                                {"success": True, "duration_us": 1})
    body, _ = render_metrics()
    text = body.decode()
    assert 'ai_registry_registrations{status="approved"} 1.0' in text
    assert 'ai_registry_registrations{status="pending"} 0.0' in text
    assert "ai_registry_executions 1.0" in text
