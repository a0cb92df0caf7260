"""Lists shown newest first page by cursor: stable under inserts, every row once."""

import pytest

from fees_app.services import account_credit
from registry_site.services import token_create

pytestmark = pytest.mark.django_db


def walk(api, url: str) -> tuple[list, list[str]]:
    """Every row of a list, following next links; and the links followed."""
    rows, links = [], []
    while url:
        body = api.get(url).json()
        assert "results" in body, (url, body)
        rows.extend(body["results"])
        url = body["next"]
        if url:
            links.append(url)
    return rows, links


@pytest.mark.parametrize("url, key", [
    ("/api/v1/account/ledger/?page_size=2", "id"),
    ("/api/v1/auth/tokens/?page_size=2", "id"),
    ("/api/v1/audit-events/?page_size=2", "id"),
])
def test_a_list_pages_by_cursor_through_every_row(client_for, moderator, url, key):
    for n in range(4):
        account_credit(user=moderator, amount=10 + n, reason=f"credit {n}")
        token_create(user=moderator, name=f"t{n}")
    api = client_for(moderator)
    rows, links = walk(api, url)
    assert links and all("cursor=" in link and "page=" not in link for link in links)
    ids = [row[key] for row in rows]
    assert len(ids) == len(set(ids)) >= 5
    assert ids == sorted(ids, reverse=True)


def test_a_row_inserted_meanwhile_neither_repeats_nor_hides_one(client_for, moderator):
    for n in range(5):
        account_credit(user=moderator, amount=10 + n, reason=f"credit {n}")
    api = client_for(moderator)
    first = api.get("/api/v1/account/ledger/?page_size=2").json()
    account_credit(user=moderator, amount=99, reason="arrived later")
    rest, _ = walk(api, first["next"])
    ids = [row["id"] for row in first["results"] + rest]
    assert len(ids) == len(set(ids))
    assert 99 not in [row["amount"] for row in first["results"] + rest]
    assert len(ids) == 6  # the five credits and the moderator's starting balance


def test_the_status_history_pages_by_cursor(client_for, register, move, user):
    registration = register(user)
    for status in ("approved", "suspended", "approved", "deprecated"):
        move(registration, status)
    rows, links = walk(client_for(user), "/api/v1/models/bert-base/history/?page_size=2")
    assert links and all("cursor=" in link for link in links)
    assert [row["to_status"] for row in rows] == ["deprecated", "approved", "suspended",
                                                  "approved", "pending"]


def test_a_tampered_cursor_is_a_400(client_for, moderator):
    response = client_for(moderator).get("/api/v1/account/ledger/?cursor=not-a-cursor")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"cursor"}
