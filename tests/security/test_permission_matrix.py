"""Every API route from the generated schema, every method, as anonymous, as a user without
rights and with a token that lacks the route's scope: refused (401, 403, 404 or 405) and
nothing changed. Public reads are listed explicitly and may answer 200."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from fees_app.models import Account, FeeSchedule, LedgerEntry
from governance_app.models import Proposal, Vote, VotingPowerCheckpoint
from governance_app.services import proposal_create, voting_power_grant
from models_app.models import (
    Artifact,
    MetadataChange,
    Registration,
    StatusChange,
    UsageStats,
)
from registry_site.models import ApiToken, AuditEvent, Parameter, Scope
from registry_site.permissions import required_scope
from registry_site.services import token_create
from tests.security import factories

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "patch", "delete"]
REFUSED = {401, 403, 404, 405}

# Anyone may read these (SPEC 7: catalog, stats, proposals, fees, parameters, docs).
PUBLIC_READS = {
    "/api/v1/models/", "/api/v1/models/{name}/", "/api/v1/models/{name}/history/",
    "/api/v1/models/{name}/stats/", "/api/v1/models/{name}/versions/",
    "/api/v1/models/{name}/versions/{version}/artifact/",
    "/api/v1/models/{name}/versions/{version}/",
    "/api/v1/models/{name}/versions/{version}/changes/",
    "/api/v1/stats/", "/api/v1/proposals/", "/api/v1/proposals/{id}/",
    "/api/v1/proposals/{id}/votes/", "/api/v1/fees/schedules/", "/api/v1/parameters/",
}
# Token creation is the password login; a fee quote changes nothing.
PUBLIC_WRITES = {("/api/v1/auth/tokens/", "post"), ("/api/v1/fees/calculate/", "post")}
# Any signed-in user may act on their own account or tokens, register a model (paying the fee),
# use an approved model (paying the fee) or execute a passed proposal; the user without rights
# here gets a business refusal (400/402/409) instead of a permission one, and nothing changes.
# A cancel by someone who is neither proposer nor moderator is refused by the cancel rule with
# 409, as issue 4 words it.
OPEN_TO_ANY_USER = {
    ("/api/v1/account/", "get"), ("/api/v1/account/ledger/", "get"),
    ("/api/v1/fees/stats/", "get"),
    ("/api/v1/auth/tokens/", "get"), ("/api/v1/auth/tokens/", "post"),
    ("/api/v1/auth/tokens/{id}/", "delete"), ("/api/v1/auth/tokens/revoke_all/", "post"),
    ("/api/v1/models/", "post"), ("/api/v1/models/{name}/usage/", "post"),
    ("/api/v1/proposals/{id}/execute/", "post"), ("/api/v1/fees/calculate/", "post"),
    ("/api/v1/proposals/{id}/cancel/", "post"),
}
# Token management needs no scope: any of a user's tokens may list or revoke that user's tokens
# (revocation must never be blocked), and creation is by password.
NO_SCOPE = {("/api/v1/auth/tokens/", "get"), ("/api/v1/auth/tokens/", "post"),
            ("/api/v1/auth/tokens/{id}/", "delete"), ("/api/v1/auth/tokens/revoke_all/", "post")}


# Routes whose handler picks the scope from the request; here, the one the boss's move needs
# (suspending an approved version is a moderator's move; an owner's deprecation needs register).
# An edit of one's own version needs register (a moderator's edit of another's, moderate).
SCOPE_CHECKED_IN_HANDLER = {("/api/v1/models/{name}/status/", "post"): "moderate",
                            ("/api/v1/models/{name}/versions/{version}/", "patch"): "register"}


@pytest.fixture(autouse=True)
def _no_rate_limits(monkeypatch):
    """The walk makes more requests than a minute's budget; limits have their own tests."""
    for scope in list(SimpleRateThrottle.THROTTLE_RATES):
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, "100000/min")


def operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(path, method) for path in sorted(schema["paths"]) for method in METHODS]


def test_schema_lists_every_api_route():
    paths = {path for path, _ in operations()}
    assert "/api/v1/models/{name}/versions/{version}/artifact/" in paths
    assert "/api/v1/proposals/{id}/vote/" in paths
    assert len(paths) >= 20


@pytest.fixture
def world(make_user, moderator, register):
    """A model (approved 1.0.0, pending 2.0.0), a proposal and a token, all the boss's: a
    moderator who owns everything, so a scope is all that can stop their token."""
    boss = make_user("boss", balance=1_000_000, moderator=True)
    voting_power_grant(user=boss, power=100_000, reason="test")
    approved = register(boss, factories.benign_pickle(), name="owned-model",
                        approve_by=moderator)
    register(boss, factories.safetensors(), name="owned-model", version="2.0.0")
    proposal = proposal_create(proposer=boss, type="parameter_change", title="Quorum",
                               payload={"parameter": "quorum_bps", "value": 500, "reason": "t"})
    token, _ = token_create(user=boss, name="kept")
    stranger = make_user("stranger")
    return {"boss": boss, "stranger": stranger, "approved": approved, "proposal": proposal,
            "token": token, "event": AuditEvent.objects.order_by("id").first()}


def url_for(path: str, world) -> str:
    if path.startswith("/api/v1/proposals/"):
        ident = world["proposal"].pk
    elif path.startswith("/api/v1/auth/tokens/"):
        ident = world["token"].pk
    else:
        ident = world["event"].pk
    return (path.replace("{name}", "owned-model").replace("{version}", "1.0.0")
            .replace("{id}", str(ident)))


def body_for(path: str, method: str):
    """A body that would succeed for someone with the rights, so only permissions stop it."""
    bodies = {
        "/api/v1/models/": {"name": "owned-model", "version": "9.9.9", "hash": "a" * 64,
                            "size_bytes": 10, "parameter_count": 1},
        "/api/v1/models/{name}/status/": {"version": "1.0.0", "status": "suspended",
                                          "reason": "matrix"},
        "/api/v1/models/{name}/usage/": {"version": "1.0.0", "success": True,
                                         "duration_us": 5},
        "/api/v1/proposals/": {"type": "parameter_change", "title": "Quorum again",
                               "payload": {"parameter": "quorum_bps", "value": 600,
                                           "reason": "t"}},
        "/api/v1/proposals/{id}/vote/": {"choice": "for"},
        "/api/v1/models/{name}/versions/{version}/": {"description": "matrix",
                                                      "reason": "matrix"},
        "/api/v1/proposals/{id}/cancel/": {"reason": "matrix"},
        "/api/v1/fees/calculate/": {"fee_type": "registration", "units": 1},
        "/api/v1/auth/tokens/": {"username": "boss", "password": "wrong"},
    }
    if method == "get":
        return None
    if path.endswith("/artifact/"):
        return factories.benign_pickle()
    return bodies.get(path, {})


def request(client, path, method, world):
    url = url_for(path, world)
    body = body_for(path, method)
    if isinstance(body, bytes):
        return getattr(client, method)(url, data=body, content_type="application/octet-stream")
    return getattr(client, method)(url, body, format="json") if body is not None else \
        getattr(client, method)(url)


def state() -> dict:
    """Everything a refused request must leave as it was."""
    security = ("security.", "auth.login_failed")
    return {
        "users": get_user_model().objects.count(),
        "registrations": sorted(Registration.objects.values_list("pk", "status")),
        "status_changes": StatusChange.objects.count(),
        "metadata": sorted(Registration.objects.values_list("pk", "description")),
        "metadata_changes": MetadataChange.objects.count(),
        "artifacts": Artifact.objects.count(),
        "executions": UsageStats.objects.aggregate(n=Sum("total_executions"))["n"],
        "ledger": LedgerEntry.objects.count(),
        "balances": Account.objects.aggregate(n=Sum("balance"))["n"],
        "schedules": FeeSchedule.objects.count(),
        "proposals": sorted(Proposal.objects.values_list("pk", "votes_for", "votes_against")),
        "proposal_rows": list(Proposal.objects.order_by("pk").values()),
        "votes": Vote.objects.count(),
        "voting_power": VotingPowerCheckpoint.objects.count(),
        "parameters": sorted(Parameter.objects.values_list("name", "value")),
        "tokens": sorted(ApiToken.objects.values_list("pk", "revoked_at")),
        "audit": AuditEvent.objects.exclude(
            action__regex="^(" + "|".join(re.escape(s) for s in security) + ")").count(),
    }


def scope_of(path: str, method: str, world) -> tuple[bool, str | None]:
    """(method allowed on the route, scope it requires), read from the resolved view."""
    match = resolve(url_for(path, world))
    view_class = match.func.cls
    actions = getattr(match.func, "actions", None)
    view = view_class(**match.func.initkwargs)
    if actions is not None:
        if method not in actions:
            return False, None
        view.action = actions[method]
    elif not hasattr(view, method):
        return False, None
    return True, required_scope(view, type("Request", (), {"method": method.upper()}))


def test_anonymous_is_refused_everywhere_but_public_reads(world):
    before = state()
    problems = []
    for path, method in operations():
        response = request(APIClient(), path, method, world)
        if method == "get" and path in PUBLIC_READS:
            allowed = {200, 404}
        elif (path, method) in PUBLIC_WRITES:
            allowed = {200, 400, 401}
        else:
            allowed = {401, 403, 405} if path.endswith("/") else REFUSED
        if response.status_code not in allowed:
            problems.append(f"{method.upper()} {path}: {response.status_code}")
    assert problems == []
    assert state() == before


def test_user_without_rights_is_refused(world, client_for):
    """Signed in with every scope they may hold, but owning nothing, moderating nothing,
    with no balance and no voting power."""
    stranger = client_for(world["stranger"])
    before = state()
    problems = []
    for path, method in operations():
        if (path, method) == ("/api/v1/auth/tokens/revoke_all/", "post"):
            continue  # self-service on the caller's own tokens
        response = request(stranger, path, method, world)
        if method == "get" and (path in PUBLIC_READS or (path, method) in OPEN_TO_ANY_USER):
            allowed = {200, 404}
        elif (path, method) in OPEN_TO_ANY_USER | PUBLIC_WRITES:
            allowed = REFUSED | {200, 400, 402, 409}
        else:
            allowed = REFUSED
        if response.status_code not in allowed:
            problems.append(f"{method.upper()} {path}: {response.status_code} "
                            f"{response.content[:120]!r}")
    assert problems == []
    assert state() == before


def test_token_lacking_the_scope_is_refused(world, client_for):
    """The boss may do everything, but each request carries a token with every scope except
    the one the route needs."""
    lacking = {scope: client_for(world["boss"], scopes=[s for s in Scope.values if s != scope])
               for scope in Scope.values}
    full = client_for(world["boss"])
    before = state()
    problems = []
    for path, method in operations():
        if (path, method) in NO_SCOPE:
            continue
        exists, scope = scope_of(path, method, world)
        if not exists:
            response = request(full, path, method, world)
            if response.status_code not in {403, 405}:
                problems.append(f"{method.upper()} {path}: {response.status_code} (no method)")
            continue
        scope = scope or SCOPE_CHECKED_IN_HANDLER.get((path, method))
        if scope is None:
            problems.append(f"{method.upper()} {path}: declares no scope")
            continue
        response = request(lacking[scope], path, method, world)
        if response.status_code != 403:
            problems.append(f"{method.upper()} {path} without {scope}: "
                            f"{response.status_code}")
    assert problems == []
    assert state() == before
