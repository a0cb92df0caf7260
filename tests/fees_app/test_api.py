"""The fee endpoints: calculate, stats and the caller's ledger."""

import pytest
import time_machine
from django.utils import timezone

from fees_app.services import account_credit, fee_charge, schedule_install

pytestmark = pytest.mark.django_db

CALCULATE = "/api/v1/fees/calculate/"
QUOTE_KEYS = {"fee_type", "method", "units", "base_fee", "unit_fee", "min_fee", "max_fee",
              "step_size", "amount", "schedule_version"}


@pytest.mark.parametrize(
    ("body", "units", "amount"),
    [
        ({"fee_type": "registration", "size_bytes": 1024}, 1024, 2024),
        ({"fee_type": "registration", "units": 1024}, 1024, 2024),
        ({"fee_type": "registration", "size_bytes": 999_000}, 999_000, 1_000_000),
        ({"fee_type": "registration", "size_bytes": 10**15}, 10**15, 1_000_000),
        ({"fee_type": "registration", "size_bytes": 0}, 0, 1000),
        ({"fee_type": "update", "size_bytes": 5000}, 5000, 5500),
        ({"fee_type": "storage", "size_bytes": 1}, 1, 1),
        ({"fee_type": "storage", "units": 0}, 0, 0),
        ({"fee_type": "execution", "units": 50}, 1, 100),
        ({"fee_type": "execution", "size_bytes": 50}, 1, 100),
        ({"fee_type": "proposal", "units": 1}, 1, 10_000),
    ],
)
def test_calculate_every_fee_type(anon_client, body, units, amount):
    response = anon_client.post(CALCULATE, body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert set(data) == QUOTE_KEYS
    assert (data["fee_type"], data["units"], data["amount"], data["schedule_version"]) == (
        body["fee_type"], units, amount, 1)


def test_calculate_returns_the_formula_inputs(anon_client):
    data = anon_client.post(CALCULATE, {"fee_type": "update", "units": 5000}, format="json").json()
    assert data == {"fee_type": "update", "method": "linear", "units": 5000, "base_fee": 500,
                    "unit_fee": 1, "min_fee": 1, "max_fee": 500_000, "step_size": 1000,
                    "amount": 5500, "schedule_version": 1}


def test_calculate_uses_the_active_version(anon_client):
    schedule_install(fee_type="storage", method="step", base_fee=0, unit_fee=7, min_fee=0,
                     max_fee=10**6, step_size=100, reason="per 100 bytes")
    data = anon_client.post(CALCULATE, {"fee_type": "storage", "units": 101},
                            format="json").json()
    assert (data["method"], data["amount"], data["schedule_version"]) == ("step", 14, 2)


def test_calculate_as_user_and_moderator(user_client, moderator_client):
    body = {"fee_type": "registration", "size_bytes": 1024}
    for api in (user_client, moderator_client):
        response = api.post(CALCULATE, body, format="json")
        assert response.status_code == 200
        assert response.json()["amount"] == 2024


def test_calculate_never_charges(user, user_client):
    user_client.post(CALCULATE, {"fee_type": "registration", "size_bytes": 1024}, format="json")
    user.account.refresh_from_db()
    assert user.account.balance == 1_000_000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fee_type": "gift", "units": 1}, "fee_type"),
        ({"units": 1}, "fee_type"),
        ({"fee_type": "storage", "units": -1}, "units"),
        ({"fee_type": "storage", "size_bytes": -1}, "size_bytes"),
        ({"fee_type": "storage", "units": "many"}, "units"),
        ({"fee_type": "storage", "units": 10**16}, "units"),
        ({"fee_type": "storage"}, "units"),
        ({"fee_type": "storage", "units": 1, "size_bytes": 1}, "units"),
    ],
)
def test_calculate_field_errors(anon_client, body, field):
    response = anon_client.post(CALCULATE, body, format="json")
    assert response.status_code == 400
    data = response.json()
    assert data["detail"] == "Invalid input."
    assert data["code"] == "invalid"
    assert set(data) == {"detail", "code", "fields"}
    assert field in data["fields"]
    assert isinstance(data["fields"][field], list)
    assert all(isinstance(m, str) for m in data["fields"][field])


def test_calculate_refuses_a_body_that_is_not_json(anon_client):
    response = anon_client.post(CALCULATE, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"detail", "code"}


def test_calculate_get_is_not_allowed(anon_client):
    response = anon_client.get(CALCULATE)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# Stats


def _pay(user, fee_type, units, model=""):
    return fee_charge(user=user, fee_type=fee_type, units=units, model_name=model,
                      model_version="1" if model else "")


def test_stats_user_sees_only_own_and_moderator_sees_all(user, other_user, user_client,
                                                         moderator_client):
    _pay(user, "registration", 1024, "bert")  # 2024
    _pay(user, "execution", 1, "bert")  # 100
    _pay(other_user, "update", 5000, "gpt")  # 5500
    own = user_client.get("/api/v1/fees/stats/")
    assert own.status_code == 200
    own = own.json()
    assert own["total_collected"] == 2124
    assert own["total_count"] == 2
    assert own["by_type"] == {"execution": {"amount": 100, "count": 1},
                              "registration": {"amount": 2024, "count": 1}}
    assert own["by_model"] == [{"name": "bert", "amount": 2124, "count": 2}]
    assert own["by_day"] == [{"date": timezone.now().date().isoformat(), "amount": 2124,
                              "count": 2}]
    assert "by_user" not in own

    everyone = moderator_client.get("/api/v1/fees/stats/").json()
    assert everyone["total_collected"] == 2124 + 5500
    assert everyone["by_user"] == [{"username": "other", "amount": 5500, "count": 1},
                                   {"username": "user", "amount": 2124, "count": 1 + 1}]
    assert [m["name"] for m in everyone["by_model"]] == ["gpt", "bert"]


def test_stats_for_everyone_need_the_moderate_scope_on_a_token(user, moderator, client_for,
                                                               client):
    _pay(user, "execution", 1)
    read_only = client_for(moderator, scopes=["read"]).get("/api/v1/fees/stats/").json()
    assert read_only["total_collected"] == 0  # the moderator's own payments
    assert "by_user" not in read_only
    client.force_login(moderator)  # a browser session is unscoped
    assert client.get("/api/v1/fees/stats/").json()["total_collected"] == 100


def test_stats_ignore_credits(make_user, user_client):
    account_credit(user=make_user(), amount=999, reason="not a fee")
    assert user_client.get("/api/v1/fees/stats/").json()["total_collected"] == 0


def test_stats_by_day_groups_by_date(user, client_for):
    with time_machine.travel("2030-01-01 10:00Z", tick=False):
        _pay(user, "execution", 1)
    with time_machine.travel("2030-01-03 23:59Z", tick=False):
        _pay(user, "execution", 1)
        _pay(user, "execution", 1)
        days = client_for(user).get("/api/v1/fees/stats/").json()["by_day"]
    assert days == [{"date": "2030-01-01", "amount": 100, "count": 1},
                    {"date": "2030-01-03", "amount": 200, "count": 2}]


def test_stats_refused_to_anonymous(anon_client):
    response = anon_client.get("/api/v1/fees/stats/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# The caller's ledger


def test_ledger_is_the_callers_own_newest_first(user, other_user, user_client):
    _pay(user, "registration", 1024, "bert")
    _pay(other_user, "execution", 1)
    response = user_client.get("/api/v1/account/ledger/")
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"next", "previous", "results"}
    rows = data["results"]
    assert [(r["kind"], r["amount"]) for r in rows] == [("debit", 2024), ("credit", 1_000_000)]
    assert rows[0]["schedule_version"] == 1
    assert rows[0]["fee_type"] == "registration"
    assert rows[0]["model_name"] == "bert"
    assert rows[1]["schedule_version"] is None


def test_ledger_pagination(make_user, client_for):
    payer = make_user(balance=10**6)
    for _ in range(29):
        _pay(payer, "execution", 1)
    api = client_for(payer)
    first = api.get("/api/v1/account/ledger/").json()
    assert len(first["results"]) == 25
    assert first["previous"] is None
    assert "cursor=" in first["next"]
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 5
    assert second["next"] is None
    assert second["previous"] is not None
    assert "page=" not in second["previous"]
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(set(ids)) == 30
    # ?page= still jumps (an offset); its links continue by cursor.
    small = api.get("/api/v1/account/ledger/?page_size=10&page=2").json()
    assert len(small["results"]) == 10
    assert "page=" not in small["previous"] and "cursor=" in small["previous"]
    assert "page_size=10" in small["next"] and "cursor=" in small["next"]
    third = api.get(small["next"]).json()["results"]
    assert [r["id"] for r in third] == ids[20:30]


def test_ledger_pages_hold_at_most_100_and_a_larger_page_size_is_a_400(make_user, client_for):
    payer = make_user(balance=10**6)
    for _ in range(105):
        _pay(payer, "storage", 0)
    api = client_for(payer)
    data = api.get("/api/v1/account/ledger/?page_size=100").json()
    assert len(data["results"]) == 100
    assert data["next"] is not None
    response = api.get("/api/v1/account/ledger/?page_size=101")
    assert response.status_code == 400
    assert response.json()["fields"] == {"page_size": ["Must be at most 100."]}


def test_a_list_refuses_parameters_it_does_not_take(user_client):
    response = user_client.get("/api/v1/account/ledger/?page=1&stauts=x&zz=1")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert set(fields) == {"stauts", "zz"}
    assert fields["zz"] == [
        "Unknown query parameter; this list takes cursor, page, page_size."]


@pytest.mark.parametrize("query", ["history=yes", "history=", "zz=1"])
def test_the_schedule_list_refuses_what_it_does_not_understand(anon_client, query):
    response = anon_client.get(f"/api/v1/fees/schedules/?{query}")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {query.split("=")[0]}


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=abc", "page_size=0", "page_size=x",
                                   "page=10001", "page_size=101"])
def test_ledger_invalid_page_is_a_400(user_client, query):
    response = user_client.get(f"/api/v1/account/ledger/?{query}")
    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid"
    assert query.split("=")[0] in data["fields"]


def test_ledger_page_beyond_the_end_is_empty(user_client):
    data = user_client.get("/api/v1/account/ledger/?page=50").json()
    assert data["results"] == []
    assert data["next"] is None


def test_ledger_query_count_is_fixed(make_user, client_for, django_assert_max_num_queries):
    payer = make_user(balance=10**6)
    for units in (1024, 2048, 4096):
        _pay(payer, "registration", units, "m")
    api = client_for(payer)
    api.get("/api/v1/account/ledger/")  # warm: last_used_at is written once
    with django_assert_max_num_queries(3):
        assert len(api.get("/api/v1/account/ledger/").json()["results"]) == 4


def test_ledger_refused_to_anonymous(anon_client):
    assert anon_client.get("/api/v1/account/ledger/").status_code == 401


def test_ledger_as_moderator_is_their_own(moderator_client, user):
    _pay(user, "execution", 1)
    rows = moderator_client.get("/api/v1/account/ledger/").json()["results"]
    assert [r["kind"] for r in rows] == ["credit"]
