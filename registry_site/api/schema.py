"""The error answers (and rate-limit headers) of every operation, as the API sends them.

drf-spectacular documents what a view declares; the errors that the stack adds to every
request (a malformed or expired token, the rate limits, the IP allow-list, a database that
is down, a NUL byte in a query) are not declared anywhere, so a generated client could not
parse them. This hook gives every operation the statuses it can answer, each with the error
body (registry_site.errors) and the extras its code carries.
"""

ERROR = "Error"
# The error body's schema for each status that has extras; the others answer ``Error``.
SCHEMA_FOR_STATUS = {"400": "ValidationError", "402": "PaymentRequired", "409": "ConflictError",
                     "429": "Throttled"}
DESCRIPTIONS = {
    "400": "Invalid input: `fields` names each broken field (query parameters included).",
    "401": "No valid credentials: the token is malformed, unknown, expired or revoked.",
    "402": "The balance cannot pay the fee: `needed` and `balance`.",
    "403": "Not allowed: a missing token scope, another user's object, or an address "
           "outside the IP allow-list.",
    "404": "Nothing by that name or id that you may see.",
    "409": "The current state refuses it (`code` says which rule).",
    "413": "The request body is larger than the server accepts.",
    "415": "The body is not JSON (`Content-Type: application/json`).",
    "422": "The `Idempotency-Key` was used for a different request.",
    "429": "Rate limited: retry after `retry_after` seconds (also the Retry-After header).",
    "503": "The database or the cache is not answering, or the action is paused.",
}
# What any request can meet before its view: authentication, the allow-list, the rate limits,
# refused bytes, and a dependency that is down.
EVERY_OPERATION = ("400", "401", "403", "429", "503")
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 0},
                               "description": "Seconds to wait before retrying."}}
ETAG = {"schema": {"type": "string"}, "description": "The answer's entity tag."}
IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False,
                 "schema": {"type": "string"},
                 "description": "An ETag you hold: 304 with no body while it is current."}
LOCATION = {"schema": {"type": "string", "format": "uri"},
            "description": "Where what was created is read (or, for a token, revoked)."}
# On every answer a rate limit counted: the limit nearest to refusing (throttling.py).
RATE_LIMIT = {
    "RateLimit-Limit": {"schema": {"type": "integer", "minimum": 1},
                        "description": "Requests allowed in the current window."},
    "RateLimit-Remaining": {"schema": {"type": "integer", "minimum": 0},
                            "description": "Requests left in it."},
    "RateLimit-Reset": {"schema": {"type": "integer", "minimum": 0},
                        "description": "Seconds until it ends."},
}

_TEXT = {"type": "string"}
_INT = {"type": "integer"}
ERROR_SCHEMAS = {
    ERROR: {
        "type": "object",
        "description": "Every error answer: a message and a stable code.",
        "properties": {"detail": _TEXT, "code": _TEXT},
        "required": ["detail", "code"],
    },
    "ValidationError": {
        "allOf": [{"$ref": f"#/components/schemas/{ERROR}"}, {
            "type": "object",
            "properties": {"fields": {
                "type": "object",
                "description": "Each broken field (dotted for nested ones) with its messages.",
                "additionalProperties": {"type": "array", "items": _TEXT},
            }},
        }],
    },
    "PaymentRequired": {
        "allOf": [{"$ref": f"#/components/schemas/{ERROR}"}, {
            "type": "object",
            "properties": {"needed": _INT, "balance": _INT, "fee_type": _TEXT},
            "required": ["needed", "balance"],
        }],
    },
    "ConflictError": {
        "allOf": [{"$ref": f"#/components/schemas/{ERROR}"}, {
            "type": "object",
            "properties": {
                "from_status": {**_TEXT, "description": "A refused status move: from."},
                "to_status": {**_TEXT, "description": "A refused status move: to."},
                "status": {**_TEXT, "description": "The version's status, when it refuses."},
                "retry_after": {**_INT, "description": "`idempotency_key_in_use`: seconds."},
            },
        }],
    },
    "Throttled": {
        "allOf": [{"$ref": f"#/components/schemas/{ERROR}"}, {
            "type": "object",
            "properties": {"retry_after": _INT},
        }],
    },
}


def _statuses(path: str, operation: dict) -> set[str]:
    statuses = set(EVERY_OPERATION)
    if "{" in path:
        statuses.add("404")
    if "requestBody" in operation:
        statuses.update(("413", "415"))
    headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
    if "Idempotency-Key" in headers:
        statuses.update(("409", "422"))
    statuses.update(code for code in operation["responses"] if code[0] in "45")
    return statuses


def _conditional(method: str, operation: dict) -> None:
    """A read's ETag, If-None-Match and 304 (registry_site.middleware)."""
    if method != "get" or "200" not in operation["responses"]:
        return
    ok = operation["responses"]["200"]
    if ok.get("content", {}).keys() - {"application/json"}:
        return  # a download, not a JSON read
    parameters = operation.setdefault("parameters", [])
    if not any(p["name"] == "If-None-Match" for p in parameters):
        parameters.append(IF_NONE_MATCH)
    ok.setdefault("headers", {}).setdefault("ETag", ETAG)
    operation["responses"].setdefault("304", {"description": "Not modified: the ETag you "
                                                             "sent is still the current one.",
                                              "headers": {"ETag": ETAG}})


def document_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: error answers on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_SCHEMAS)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            _conditional(method, operation)
            responses = operation["responses"]
            for status in sorted(_statuses(path, operation)):
                declared = responses.get(status, {})
                name = SCHEMA_FOR_STATUS.get(status, ERROR)
                answer = {
                    "description": declared.get("description") or DESCRIPTIONS[status],
                    "content": {"application/json": {
                        "schema": {"$ref": f"#/components/schemas/{name}"}}},
                }
                headers = {**declared.get("headers", {}),
                           **(RETRY_AFTER if status == "429" else {})}
                if headers:
                    answer["headers"] = headers
                responses[status] = answer
            for answer in responses.values():
                answer["headers"] = {**answer.get("headers", {}), **RATE_LIMIT}
            if "201" in responses:
                responses["201"]["headers"]["Location"] = LOCATION
    return result
