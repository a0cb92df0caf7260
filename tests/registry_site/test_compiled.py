"""registry_site.compiled: a queryset compiled once, run with the real values."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from registry_site.compiled import MARKER_IDS, MARKER_TIME, Compiled
from registry_site.models import ApiToken
from registry_site.services import token_create

pytestmark = pytest.mark.django_db


def live_tokens(user_id, now):
    return ApiToken.objects.filter(user_id=user_id, expires_at__gt=now).order_by("id")


def test_it_answers_what_the_queryset_answers_for_any_values(make_user):
    alice, bob = make_user("alice-c"), make_user("bob-c")
    for user in (alice, alice, bob):
        token_create(user=user)
    compiled = Compiled(live_tokens, user_id=MARKER_IDS[0], now=MARKER_TIME)
    now = timezone.now()
    for user_id, when in [(alice.pk, now), (bob.pk, now), (alice.pk, now + timedelta(days=400)),
                          (-1, now)]:
        expected = list(live_tokens(user_id, when))
        got = compiled.rows(user_id=user_id, now=when)
        assert [t.pk for t in got] == [t.pk for t in expected]
        assert [t.scopes for t in got] == [t.scopes for t in expected]  # converted fields
    assert len(compiled.rows(user_id=alice.pk, now=now)) == 2


def test_a_marker_the_sql_does_not_carry_is_refused():
    compiled = Compiled(lambda user_id, now: ApiToken.objects.filter(user_id=user_id),
                        user_id=MARKER_IDS[0], now=MARKER_TIME)
    with pytest.raises(ImproperlyConfigured, match="now is not a parameter"):
        compiled.sql(user_id=1, now=timezone.now())


def test_every_value_must_be_given():
    compiled = Compiled(live_tokens, user_id=MARKER_IDS[0], now=MARKER_TIME)
    with pytest.raises(TypeError):
        compiled.sql(user_id=1)


def test_rows_are_what_the_queryset_returns_models_related_rows_and_values(make_user):
    alice, bob = make_user("alice-r"), make_user("bob-r")
    for user in (alice, bob, bob):
        token_create(user=user)
    now = timezone.now()

    def with_users(user_id, now):
        return live_tokens(user_id, now).select_related("user")

    def as_values(user_id, now):
        return live_tokens(user_id, now).values("id", "scopes", "user__username")[:1]

    models = Compiled(with_users, user_id=MARKER_IDS[0], now=MARKER_TIME)
    values = Compiled(as_values, user_id=MARKER_IDS[0], now=MARKER_TIME)
    for user in (alice, bob):
        got = models.rows(user_id=user.pk, now=now)
        expected = list(with_users(user.pk, now))
        assert [(t.pk, t.scopes, t.created_at) for t in got] == \
            [(t.pk, t.scopes, t.created_at) for t in expected]
        assert all("user" in t._state.fields_cache and t.user.username == user.username
                   for t in got)  # select_related rows populated, no further query
        assert values.rows(user_id=user.pk, now=now) == list(as_values(user.pk, now))
    assert models.rows(user_id=alice.pk, now=now + timedelta(days=400)) == []


def test_an_optional_marker_may_be_missing_from_the_sql():
    compiled = Compiled(lambda user_id, now: ApiToken.objects.filter(user_id=user_id),
                        user_id=MARKER_IDS[0], now=MARKER_TIME, optional=["now"])
    sql, params = compiled.sql(user_id=5, now=timezone.now())
    assert params == [5]


def _row(model, pk):
    return model.objects.filter(pk=pk).values().get()


def test_insert_new_writes_the_row_the_orm_writes(make_user):
    from django.db.models.functions import Now

    from registry_site.compiled import insert_new
    from registry_site.models import AuditEvent

    user = make_user("ins")
    when = timezone.now()
    fields = {"created_at": when, "actor_id": user.pk, "action": "test.inserted",
                  "target_type": "x.y", "target_id": "7", "ip": "2001:db8::1",
                  "details": {"nested": [1, "two", None], "n": 2**62}}
    mine = insert_new(AuditEvent(**fields))
    theirs = AuditEvent.objects.create(**fields)
    assert mine.pk is not None and not mine._state.adding
    ours, orm = _row(AuditEvent, mine.pk), _row(AuditEvent, theirs.pk)
    assert {k: v for k, v in ours.items() if k != "id"} == \
        {k: v for k, v in orm.items() if k != "id"}
    with pytest.raises(ValueError, match="new rows only"):
        insert_new(mine)
    with pytest.raises(ValueError, match="not expressions"):
        insert_new(AuditEvent(**{**fields, "created_at": Now()}))


def test_insert_new_takes_an_id_that_is_one_of_the_values(make_user):
    from models_app.models import UsageStats
    from models_app.services import registration_create
    from registry_site.compiled import insert_new

    owner = make_user("ins-owner", balance=10_000_000)
    registration = registration_create(owner=owner, name="ins-model", version="1.0.0",
                                       hash="a" * 64, size_bytes=10, parameter_count=1)
    UsageStats.objects.filter(pk=registration.pk).delete()
    stats = insert_new(UsageStats(registration=registration))
    assert stats.pk == registration.pk
    assert _row(UsageStats, registration.pk)["total_executions"] == 0



@pytest.mark.postgres
def test_prepared_statements_are_planned_once_for_any_values():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"


@pytest.mark.postgres
def test_insert_after_inserts_only_what_the_statement_returned(make_user):
    from fees_app.models import Account, FeeSchedule, LedgerEntry
    from registry_site.compiled import insert_after

    user = make_user("after", balance=100)
    debit = ("UPDATE fees_app_account SET balance = balance - %s WHERE user_id = %s "
             "AND balance >= %s RETURNING id, balance")
    taken = {"account_id": "source.id", "balance_after": "source.balance"}
    before = LedgerEntry.objects.count()

    schedule = FeeSchedule.objects.active().get(fee_type="execution")

    def entry(amount):
        return LedgerEntry(kind="debit", amount=amount, fee_type="execution",
                           schedule=schedule, units=1)

    made = insert_after(entry(30), statement=debit, params=[30, user.pk, 30], taken=taken)
    assert made.balance_after == 70 and made.account_id == Account.objects.get(user=user).pk
    stored = LedgerEntry.objects.get(pk=made.pk)
    assert (stored.amount, stored.balance_after) == (30, 70)
    # Too little on the account: the update returns nothing, so nothing is inserted.
    assert insert_after(entry(500), statement=debit, params=[500, user.pk, 500],
                        taken=taken) is None
    assert LedgerEntry.objects.count() == before + 1
    assert Account.objects.get(user=user).balance == 70


@pytest.mark.postgres
def test_insert_statement_feeds_insert_after_a_new_row_and_its_record(make_user):
    """A new row and a row that refers to it in one statement (a registration and the first
    entry of its history)."""
    from registry_site.compiled import insert_after, insert_statement
    from registry_site.models import ApiToken, AuditEvent

    user = make_user("inserted")
    token = ApiToken(user=user, name="t", prefix="p", digest="d" * 64,
                     expires_at=timezone.now() + timedelta(days=1))
    statement, params = insert_statement(token)
    event = insert_after(AuditEvent(created_at=timezone.now(), action="token.created",
                                    target_type="registry_site.apitoken", details={}),
                         statement=statement, params=params,
                         taken={"target_id": "source.id::text"})
    stored = ApiToken.objects.get(digest="d" * 64)
    assert AuditEvent.objects.get(pk=event.pk).target_id == str(stored.pk)
    with pytest.raises(ValueError, match="new rows"):
        insert_statement(stored)
