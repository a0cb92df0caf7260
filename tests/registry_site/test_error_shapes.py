"""One shape for field errors: flat messages under each field name, list items named
"Item N: ...", nested objects as dotted names, and choice errors that name the allowed values
without echoing the input."""

import pytest
from rest_framework import serializers

from registry_site.api.serializers import TokenCreateInputSerializer
from registry_site.errors import InvalidInput, field_messages
from registry_site.inputs import validated
from registry_site.models import ApiToken
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SCOPES = "Must be one of read, register, usage, vote, propose, moderate."
CATEGORIES = ("Must be one of NLP, ComputerVision, Speech, Recommendation, TimeSeries, "
              "Generative, Other.")


class Nested(serializers.Serializer):
    reason = serializers.CharField()
    tags = serializers.ListField(child=serializers.IntegerField())


class Outer(serializers.Serializer):
    payload = Nested()
    names = serializers.ListField(child=serializers.CharField(max_length=2))


def test_lists_are_flat_messages_and_nested_objects_dotted_names():
    with pytest.raises(InvalidInput) as refused:
        validated(Outer, {"payload": {"tags": [1, "x"]}, "names": ["ok", "long"]})
    assert refused.value.extra["fields"] == {
        "payload.reason": ["This field is required."],
        "payload.tags": ["Item 1: A valid integer is required."],
        "names": ["Item 1: Ensure this field has no more than 2 characters."],
    }


def test_the_api_and_the_services_flatten_alike():
    serializer = Outer(data={"payload": {"reason": "r", "tags": ["x"]}, "names": ["abc"]})
    assert not serializer.is_valid()
    assert field_messages(serializer.errors) == {"payload.tags": ["Item 0: A valid integer is "
                                                                  "required."],
                                                 "names": ["Item 0: Ensure this field has no "
                                                           "more than 2 characters."]}


def test_token_scopes_item_errors_are_flat_and_name_the_allowed_scopes(anon_client, user):
    response = anon_client.post("/api/v1/auth/tokens/", {
        "username": "user", "password": PASSWORD, "scopes": ["read", "root", ["NLP"]]},
        format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid input.", "code": "invalid", "fields": {
        "scopes": [f"Item 1: {SCOPES}", f"Item 2: {SCOPES}"]}}
    assert not ApiToken.objects.exists()


def test_a_serializer_used_directly_names_the_scopes_too():
    serializer = TokenCreateInputSerializer(data={"username": "u", "password": "p",
                                                  "scopes": ["root"]})
    assert not serializer.is_valid()
    assert [str(m) for m in serializer.errors["scopes"][0]] == [SCOPES]


@pytest.mark.parametrize("value", [["NLP"], "Poetry", {"a": 1}])
def test_registration_category_error_names_the_choices_without_the_input(user_client, value):
    response = user_client.post("/api/v1/models/", {"category": value}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["category"] == [CATEGORIES]


@pytest.mark.parametrize("value", [["storage"], "gift"])
def test_fee_type_error_names_the_choices_without_the_input(anon_client, value):
    response = anon_client.post("/api/v1/fees/calculate/", {"fee_type": value, "units": 1},
                                format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "fee_type": ["Must be one of registration, execution, storage, proposal, update."]}


def test_status_change_error_names_the_statuses(moderator, client_for):
    response = client_for(moderator).post("/api/v1/models/any/status/",
                                          {"version": "1", "status": ["approved"]},
                                          format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["status"] == [
        "Must be one of pending, approved, rejected, suspended, deprecated."]


@pytest.mark.parametrize(("query", "field", "values"), [
    ("category=<b>NLPx</b>", "category", CATEGORIES),
    ("status=gone", "status", "Must be one of pending, approved, rejected, suspended, "
                              "deprecated."),
])
def test_catalog_filter_choice_errors_name_the_choices_without_the_input(anon_client, query,
                                                                         field, values):
    response = anon_client.get(f"/api/v1/models/?{query}")
    assert response.status_code == 400
    assert response.json()["fields"] == {field: [values]}
