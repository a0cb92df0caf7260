"""The OpenAPI schema is valid and says what the API answers: errors, media types, nulls."""

import json

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

ERROR_SCHEMAS = {"Error", "ValidationError", "PaymentRequired", "ConflictError", "Throttled"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_the_schema_is_valid_openapi_3_1(schema):
    assert schema["openapi"] == "3.1.0"
    validate(json.loads(json.dumps(schema)))
    assert '"nullable"' not in json.dumps(schema)  # 3.0's keyword means nothing in 3.1


def test_every_operation_documents_its_errors_with_the_error_body(schema):
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        expected = {"400", "401", "403", "429", "503"} | ({"404"} if "{" in path else set())
        assert expected <= set(responses), (method, path)
        for status, answer in responses.items():
            if status[0] not in "45":
                continue
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in ERROR_SCHEMAS, (method, path, status)
        if "Idempotency-Key" in {p["name"] for p in operation.get("parameters", [])}:
            assert {"409", "422"} <= set(responses)
    usage = schema["paths"]["/api/v1/models/{name}/usage/"]["post"]["responses"]
    assert usage["402"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PaymentRequired")
    throttled = schema["components"]["schemas"]["Throttled"]["allOf"][1]
    assert "retry_after" in throttled["properties"]


def test_every_answer_documents_the_rate_limit_headers(schema):
    for path, method, operation in operations(schema):
        for status, answer in operation["responses"].items():
            assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
                answer["headers"]), (method, path, status)


def test_bodies_are_json_except_the_artifact_upload(schema):
    for path, method, operation in operations(schema):
        if "requestBody" not in operation:
            continue
        media = set(operation["requestBody"]["content"])
        if path.endswith("/artifact/"):
            assert media == {"application/octet-stream"}
        else:
            assert media == {"application/json"}, (method, path)


def test_the_token_request_has_no_default_it_refuses(schema):
    body = schema["components"]["schemas"]["TokenCreateInputRequest"]["properties"]
    assert "minLength" not in body["name"]
    assert body["scopes"]["minItems"] == 1


def test_page_parameters_carry_their_bounds(schema):
    params = {p["name"]: p["schema"] for p in
              schema["paths"]["/api/v1/account/ledger/"]["get"]["parameters"]}
    assert params["page"] == {"type": "integer", "minimum": 1, "maximum": 10_000}
    assert params["page_size"] == {"type": "integer", "minimum": 1, "maximum": 100}


def test_a_proposal_body_is_a_union_discriminated_by_type(schema):
    body = schema["paths"]["/api/v1/proposals/"]["post"]["requestBody"]
    union = schema["components"]["schemas"][
        body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert union["discriminator"]["propertyName"] == "type"
    mapping = union["discriminator"]["mapping"]
    assert set(mapping) == {"model_approval", "fee_change", "parameter_change", "emergency"}
    fee_change = schema["components"]["schemas"][mapping["fee_change"].rsplit("/", 1)[1]]
    payload = schema["components"]["schemas"][
        fee_change["properties"]["payload"]["$ref"].rsplit("/", 1)[1]]
    assert {"fee_type", "method", "base_fee", "reason"} <= set(payload["required"])
