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
        got = list(compiled.raw(user_id=user_id, now=when))
        assert [t.pk for t in got] == [t.pk for t in expected]
        assert [t.scopes for t in got] == [t.scopes for t in expected]  # converted fields
    assert len(list(compiled.raw(user_id=alice.pk, now=now))) == 2


def test_a_marker_the_sql_does_not_carry_is_refused():
    compiled = Compiled(lambda user_id, now: ApiToken.objects.filter(user_id=user_id),
                        user_id=MARKER_IDS[0], now=MARKER_TIME)
    with pytest.raises(ImproperlyConfigured, match="now is not a parameter"):
        compiled.sql(user_id=1, now=timezone.now())


def test_every_value_must_be_given():
    compiled = Compiled(live_tokens, user_id=MARKER_IDS[0], now=MARKER_TIME)
    with pytest.raises(TypeError):
        compiled.sql(user_id=1)
