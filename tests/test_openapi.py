"""The OpenAPI document: the API the spec publishes, exactly what the server accepts and answers."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
from starlette.testclient import TestClient

from ayeto import query
from ayeto.api import create_app
from ayeto.api.errors import WWW_AUTHENTICATE
from ayeto.api.openapi import SAMPLE, SAMPLE_FIND, SAMPLE_ID
from ayeto.errors import BadRequest
from ayeto.models import UUID_PATTERN, PublicConversationView
from ayeto.patterns import MAX_PATTERN_LENGTH
from ayeto.store import open_store

BASE = "/api/v3/conversation"
JSON = "application/json"
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
SCHEMES = {
    "uni-api-key": {
        "type": "apiKey",
        "in": "header",
        "name": "uni-api-key",
        "description": "An API key `ayeto-<64 hex>` with scope `ayeto.conversation` or `*`.",
    }
}

# The fields of each model, in the order DESIGN.md lists them.
FIELDS = {
    "PublicConversationView": [
        "id",
        "name",
        "model",
        "img_gen_model",
        "summary",
        "organization_id",
        "assistant_id",
        "messages",
        "created",
        "updated",
        "accessed",
    ],
    "BasicLLMMessageView": [
        "id",
        "timestamp",
        "role",
        "content",
        "reasoning_content",
        "model",
        "img_gen",
    ],
    "ModelMeta": ["user_id", "timestamp"],
    "ImgGenMessage": [
        "id",
        "timestamp",
        "model",
        "format",
        "hd",
        "prompt",
        "content",
        "response_id",
        "image_url",
        "image_file_id",
    ],
    "DbParams": ["sort_key", "sort_order", "limit_from", "limit_to", "filters"],
}
RESPONSE_MODELS = ["PublicConversationView", "BasicLLMMessageView", "ModelMeta", "ImgGenMessage"]

UUID = {"type": "string", "format": "uuid"}
NULL = {"type": "null"}
STRING = {"type": "string"}
INT64 = {"type": "integer", "format": "int64"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # The document is the same whatever the store.
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'ayeto.db'}")
    with TestClient(create_app(store)) as client:
        yield client


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def schema(openapi: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = openapi["components"]["schemas"][name]
    return found


def operation(openapi: dict[str, Any], endpoint: str) -> dict[str, Any]:
    found: dict[str, Any] = openapi["paths"][f"{BASE}/{endpoint}"]["post"]
    return found


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def validator(openapi: dict[str, Any], name: str) -> jsonschema_rs.Draft202012Validator:
    """Validates against component `name`, its references resolved within the document."""
    root = {**ref(name), "components": openapi["components"]}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from walk(child)


def test_exactly_the_three_endpoints(openapi: dict[str, Any]) -> None:
    assert {path: list(item) for path, item in openapi["paths"].items()} == {
        f"{BASE}/find": ["post"],
        f"{BASE}/get": ["post"],
        f"{BASE}/delete": ["post"],
    }


def test_operations_have_ids_and_a_described_tag(openapi: dict[str, Any]) -> None:
    assert [
        (operation(openapi, name)["operationId"], operation(openapi, name)["tags"])
        for name in ("find", "get", "delete")
    ] == [
        ("findConversations", ["conversation"]),
        ("getConversation", ["conversation"]),
        ("deleteConversation", ["conversation"]),
    ]
    assert openapi["tags"] == [
        {
            "name": "conversation",
            "description": "Search, read and delete the conversations of the key's user.",
        }
    ]


def test_the_server_is_wherever_the_document_is(openapi: dict[str, Any]) -> None:
    assert openapi["servers"] == [
        {"url": "/", "description": "The server that serves this document."}
    ]


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
        "example": 1,
    }
}
RATE_LIMIT_FIELDS = {
    "RateLimit-Policy": {
        "description": "The key's rate limits: a name, `q` requests per `w` seconds each "
        "(draft-ietf-httpapi-ratelimit-headers).",
        "required": True,
        "schema": STRING,
        "example": '"600-per-60s";q=600;w=60',
    },
    "RateLimit": {
        "description": "What is left of each limit: `r` more requests within the next `t` "
        "seconds (draft-ietf-httpapi-ratelimit-headers).",
        "required": True,
        "schema": STRING,
        "example": '"600-per-60s";r=599;t=60',
    },
}


@pytest.mark.parametrize(
    ("endpoint", "errors"),
    [
        ("find", ["400", "401", "413", "429", "503"]),
        ("get", ["400", "401", "403", "404", "429", "503"]),
        ("delete", ["400", "401", "403", "404", "429", "503"]),
    ],
)
def test_each_endpoint_declares_exactly_its_errors_and_their_headers(
    openapi: dict[str, Any], endpoint: str, errors: list[str]
) -> None:
    responses = operation(openapi, endpoint)["responses"]
    assert sorted(responses) == ["200", *errors]
    for status in errors:
        assert responses[status]["content"] == {JSON: {"schema": ERROR_BODY}}
        assert responses[status]["description"]
    # Every answer once the key is valid states its limits; a 401 (no valid key) and a 503 (the
    # key could not be checked) cannot; a 429 is a valid key over its limit, and states them.
    expected = {
        "200": RATE_LIMIT_FIELDS,
        "400": RATE_LIMIT_FIELDS,
        "401": {
            "WWW-Authenticate": {
                "description": "The scheme to authenticate with.",
                "required": True,
                "schema": STRING,
                "example": WWW_AUTHENTICATE,
            }
        },
        "403": RATE_LIMIT_FIELDS,
        "404": RATE_LIMIT_FIELDS,
        "413": RATE_LIMIT_FIELDS,
        "429": RETRY_AFTER | RATE_LIMIT_FIELDS,
        "503": RETRY_AFTER,
    }
    assert {status: answer["headers"] for status, answer in responses.items()} == {
        status: expected[status] for status in ["200", *errors]
    }


def test_the_answers_of_each_endpoint(openapi: dict[str, Any]) -> None:
    def ok(endpoint: str) -> dict[str, Any]:
        answer: dict[str, Any] = operation(openapi, endpoint)["responses"]["200"]
        return answer["content"][JSON]  # type: ignore[no-any-return]

    conversation = ref("PublicConversationView")
    assert ok("find") == {
        "schema": {
            "type": "array",
            "items": conversation,
            "title": "Response 200 Findconversations",
        },
        "example": [SAMPLE],
    }
    assert ok("get") == {"schema": conversation, "example": SAMPLE}
    assert ok("delete") == {
        "schema": {**UUID, "title": "Response 200 Deleteconversation"},
        "example": SAMPLE_ID,
    }
    assert schema(openapi, "ErrorBody")["properties"]["detail"]["type"] == "string"
    assert schema(openapi, "ErrorBody")["required"] == ["detail"]


def test_the_examples_are_the_spec_s_and_hold(openapi: dict[str, Any]) -> None:
    assert SAMPLE["id"] == SAMPLE_ID
    assert PublicConversationView.model_validate(SAMPLE).model_dump(mode="json") == SAMPLE
    validator(openapi, "PublicConversationView").validate(SAMPLE)
    validator(openapi, "DbParams").validate(SAMPLE_FIND)
    assert query.parse_query(SAMPLE_FIND).limit == 20


def test_no_validation_error_is_documented(openapi: dict[str, Any]) -> None:
    # The server answers malformed input with 400 and its own detail, never FastAPI's 422.
    for item in openapi["paths"].values():
        for op in item.values():
            assert "422" not in op["responses"]
    assert [name for name in openapi["components"]["schemas"] if "ValidationError" in name] == []


def test_the_document_never_mentions_422(client: TestClient) -> None:
    # Model docstrings are the public descriptions of their schemas, so no internal note leaks.
    assert "422" not in client.get("/openapi.json").text


def test_no_number_is_a_float_and_no_schema_has_a_default(openapi: dict[str, Any]) -> None:
    # 2**63 - 1 as a float is 2**63, out of range; a response's defaults would describe nothing.
    assert [node for node in walk(openapi) if isinstance(node, float)] == []
    assert [node for node in walk(openapi) if isinstance(node, dict) and "default" in node] == []


def test_the_api_key_scheme_applies_to_every_operation(openapi: dict[str, Any]) -> None:
    assert openapi["components"]["securitySchemes"] == SCHEMES
    for item in openapi["paths"].values():
        assert item["post"]["security"] == [{"uni-api-key": []}]


def test_find_takes_an_optional_db_params_body_and_no_parameters(openapi: dict[str, Any]) -> None:
    find = operation(openapi, "find")
    assert find["requestBody"] == {
        "required": False,
        "content": {JSON: {"schema": ref("DbParams"), "example": SAMPLE_FIND}},
    }
    assert "parameters" not in find


@pytest.mark.parametrize("endpoint", ["get", "delete"])
def test_entity_id_is_a_required_uuid_query_parameter(
    openapi: dict[str, Any], endpoint: str
) -> None:
    op = operation(openapi, endpoint)
    assert op["parameters"] == [
        {
            "name": "entity_id",
            "in": "query",
            "required": True,
            "schema": {
                "type": "string",
                "format": "uuid",
                "pattern": "^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$",
                "title": "Entity Id",
                "description": "Conversation ID (a UUID, in any case).",
            },
            "description": "Conversation ID (a UUID, in any case).",
            "examples": {"spec": {"summary": "The spec's sample", "value": SAMPLE_ID}},
        }
    ]
    assert "requestBody" not in op


@pytest.mark.parametrize("name", list(FIELDS))
def test_models_have_exactly_the_designed_fields(openapi: dict[str, Any], name: str) -> None:
    assert list(schema(openapi, name)["properties"]) == FIELDS[name]


@pytest.mark.parametrize("name", RESPONSE_MODELS)
def test_every_response_field_is_required(openapi: dict[str, Any], name: str) -> None:
    # DESIGN.md: every field is always present in a response, so a generated client may rely on it.
    assert sorted(schema(openapi, name).get("required", [])) == sorted(FIELDS[name])


@pytest.mark.parametrize("name", [*RESPONSE_MODELS, "DbParams"])
def test_models_allow_no_other_field(openapi: dict[str, Any], name: str) -> None:
    # DESIGN.md: the spec leaves ImgGenMessage undefined, so an image's other fields are kept.
    expected = name == "ImgGenMessage"
    assert schema(openapi, name)["additionalProperties"] is expected


def types(prop: dict[str, Any]) -> list[Any]:
    """The alternatives of a property: its `anyOf`, or the property itself."""
    return [
        {k: v for k, v in option.items() if k in ("type", "format", "$ref")}
        for option in prop.get("anyOf", [prop])
    ]


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("PublicConversationView", "id", [UUID]),
        ("PublicConversationView", "name", [STRING]),
        ("PublicConversationView", "model", [STRING]),
        ("PublicConversationView", "img_gen_model", [STRING]),
        ("PublicConversationView", "summary", [STRING]),
        ("PublicConversationView", "organization_id", [UUID, NULL]),
        ("PublicConversationView", "assistant_id", [UUID, NULL]),
        ("PublicConversationView", "messages", [{"type": "array"}]),
        ("PublicConversationView", "created", [ref("ModelMeta")]),
        ("PublicConversationView", "updated", [ref("ModelMeta")]),
        ("PublicConversationView", "accessed", [ref("ModelMeta")]),
        ("BasicLLMMessageView", "id", [UUID]),
        ("BasicLLMMessageView", "timestamp", [INT64]),
        ("BasicLLMMessageView", "role", [STRING]),
        ("BasicLLMMessageView", "content", [STRING, NULL]),
        ("BasicLLMMessageView", "reasoning_content", [STRING, NULL]),
        ("BasicLLMMessageView", "model", [STRING, NULL]),
        ("BasicLLMMessageView", "img_gen", [ref("ImgGenMessage"), NULL]),
        ("ModelMeta", "user_id", [UUID, NULL]),
        ("ModelMeta", "timestamp", [INT64]),
        ("ImgGenMessage", "id", [UUID, NULL]),
        ("ImgGenMessage", "timestamp", [INT64, NULL]),
        ("ImgGenMessage", "model", [STRING]),
        ("ImgGenMessage", "format", [STRING]),
        ("ImgGenMessage", "hd", [{"type": "boolean"}]),
        ("ImgGenMessage", "prompt", [STRING]),
        ("ImgGenMessage", "content", [STRING]),
        ("ImgGenMessage", "response_id", [STRING]),
        ("ImgGenMessage", "image_url", [STRING]),
        ("ImgGenMessage", "image_file_id", [UUID, NULL]),
    ],
)
def test_field_types(openapi: dict[str, Any], name: str, field: str, expected: list[Any]) -> None:
    assert types(schema(openapi, name)["properties"][field]) == expected


def test_message_roles(openapi: dict[str, Any]) -> None:
    conversation = schema(openapi, "PublicConversationView")["properties"]
    assert conversation["messages"]["items"] == ref("BasicLLMMessageView")
    role = schema(openapi, "BasicLLMMessageView")["properties"]["role"]
    assert role["enum"] == ["system", "user", "assistant", "tool", "internal"]


def test_db_params_keys_may_be_left_out_and_are_never_null(openapi: dict[str, Any]) -> None:
    db_params = schema(openapi, "DbParams")
    assert "required" not in db_params
    index = {**INT64, "minimum": 0, "maximum": 2**63 - 1}
    assert {
        key: {k: v for k, v in value.items() if k != "description"}
        for key, value in db_params["properties"].items()
    } == {
        "sort_key": ref("SortKey"),
        "sort_order": ref("SortOrder"),
        "limit_from": index,
        "limit_to": index,
        "filters": {"type": "array", "items": ref("Filter"), "maxItems": 50},
    }
    assert db_params["properties"]["filters"]["description"] == (
        "`[field, operator, value]` conditions, all of which must hold: at most 50 filters, and "
        "regex patterns may total at most 4000 characters."
    )
    # README: the default order depends on whether a sort key is given.
    assert db_params["properties"]["sort_order"]["description"] == (
        "`0` ascending, `1` descending; default ascending when `sort_key` is given, else "
        "descending."
    )


def test_the_filter_language_has_named_enums_that_read_well(openapi: dict[str, Any]) -> None:
    def named(name: str) -> list[tuple[Any, str]]:
        enum = schema(openapi, name)
        return list(zip(enum["enum"], enum["x-enum-varnames"], strict=True))

    assert named("FilterOperator") == [
        ("==", "EQ"),
        ("!=", "NE"),
        ("<", "LT"),
        (">", "GT"),
        ("<=", "LE"),
        (">=", "GE"),
        ("regex", "REGEX"),
    ]
    assert named("SortOrder") == [(0, "ASC"), (1, "DESC")]
    assert schema(openapi, "SortOrder")["type"] == "integer"
    assert [value for value, _ in named("FilterField")] == list(query.FIELDS)
    assert [value for value, _ in named("SortKey")] == list(query.SORTABLE)
    assert dict(named("FilterField"))["created.timestamp"] == "CREATED_TIMESTAMP"
    assert dict(named("FilterField"))["messages.reasoning_content"] == "MESSAGES_REASONING_CONTENT"
    assert dict(named("SortKey"))["updated.user_id"] == "UPDATED_USER_ID"


def test_a_filter_is_a_triple_for_generators(openapi: dict[str, Any]) -> None:
    # What a generator that reads a `$ref` alone (OpenAPI 3.0) makes a filter's type from.
    assert schema(openapi, "Filter")["$ref"] == ref("FilterTriple")["$ref"]
    assert schema(openapi, "FilterTriple") == {
        "type": "array",
        "description": "The shape of a filter: `[field, operator, value]`.",
        "prefixItems": [
            ref("FilterField"),
            ref("FilterOperator"),
            {
                "anyOf": [
                    {"type": "string", "pattern": r"^[^\x00]*$"},
                    {**UUID, "pattern": f"^{UUID_PATTERN}$"},
                    {**INT64, "minimum": -(2**63), "maximum": 2**63 - 1},
                    NULL,
                ]
            },
        ],
        "minItems": 3,
        "maxItems": 3,
    }


def test_each_field_and_operator_pair_has_exactly_one_typed_triple(
    openapi: dict[str, Any],
) -> None:
    pairs: list[tuple[str, str]] = []
    for triple in schema(openapi, "Filter")["oneOf"]:
        field, operator, _ = triple["prefixItems"]
        pairs += itertools.product(field["enum"], operator["enum"])
    allowed = [
        (name, str(op))
        for name, field in query.FIELDS.items()
        for op, rule in query.OPERATORS.items()
        if field.kind in rule.kinds
    ]
    assert sorted(pairs) == sorted(allowed)


def test_typed_triples_say_what_they_take(openapi: dict[str, Any]) -> None:
    described = {t["description"]: t["prefixItems"][2] for t in schema(openapi, "Filter")["oneOf"]}
    assert described[
        "`created.timestamp`, `updated.timestamp`, `accessed.timestamp`, "
        "`messages.timestamp` with `==`, `!=`, `<`, `>`, `<=`, `>=`: the value is an integer "
        "(milliseconds since the Unix epoch)."
    ] == {**INT64, "minimum": -(2**63), "maximum": 2**63 - 1}
    assert described[
        "`organization_id`, `assistant_id`, `created.user_id`, `updated.user_id`, "
        "`accessed.user_id` with `==`, `!=`: the value is a UUID string (any case), or `null`."
    ] == {"anyOf": [{**UUID, "pattern": f"^{UUID_PATTERN}$"}, NULL]}


UPPER_UUID = "550E8400-E29B-41D4-A716-446655440000"
# Values of every type, for every field and operator: the document and the parser must agree on
# each of them.
VALUES: list[Any] = [
    None,
    "gpt-4o",
    "",
    "nul\x00",
    SAMPLE_ID,
    UPPER_UUID,
    "{550e8400-e29b-41d4-a716-446655440000}",
    "550e8400e29b41d4a716446655440000",
    ".*Python.*",
    "a" * MAX_PATTERN_LENGTH,
    "a" * (MAX_PATTERN_LENGTH + 1),
    0,
    1_735_689_600_000,
    -(2**63) - 1,
    -(2**63),
    2**63 - 1,
    2**63,
    10.0,
    10.5,
    True,
    [],
    {},
]


def parser_accepts(triple: list[Any]) -> bool:
    try:
        query.parse_query({"filters": [triple]})
    except BadRequest:
        return False
    return True


@pytest.mark.parametrize("field", list(query.FIELDS))
def test_the_document_accepts_exactly_the_filters_the_parser_accepts(
    openapi: dict[str, Any], field: str
) -> None:
    filter_schema = validator(openapi, "Filter")
    disagreements = [
        (field, op, value)
        for op in [*query.OPERATORS, "=", "~"]
        for value in VALUES
        if filter_schema.is_valid([field, op, value]) != parser_accepts([field, op, value])
    ]
    assert disagreements == []


def test_what_no_filter_is(openapi: dict[str, Any]) -> None:
    filter_schema = validator(openapi, "Filter")
    for triple in (["colour", "==", "red"], ["name", "=="], ["name", "==", "a", "b"], "name"):
        assert not filter_schema.is_valid(triple)
        assert not parser_accepts(triple)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "mistake",
    [
        ["id", "<", None],
        ["id", "==", None],
        ["created.timestamp", "regex", "x"],
        ["name", "==", 1],
        ["id", "==", "x"],
        ["created.timestamp", "==", "x"],
        ["name", "==", "\x00"],
        ["name", "regex", "a" * (MAX_PATTERN_LENGTH + 1)],
    ],
)
def test_the_filter_rules_read_as_the_server_words_them(
    openapi: dict[str, Any], mistake: list[Any]
) -> None:
    with pytest.raises(BadRequest) as refused:
        query.parse_query({"filters": [mistake]})
    # The rule, without where it was broken, the field's name and what was sent.
    rule = re.sub(
        r"^filters\[0\]: (invalid regex: )?('[^']*' )?|, (not|got) .*$", "", refused.value.detail
    )
    assert rule in schema(openapi, "Filter")["description"]


def test_patterns_are_re2_of_bounded_length(openapi: dict[str, Any]) -> None:
    [regex] = [
        t for t in schema(openapi, "Filter")["oneOf"] if t["prefixItems"][1]["enum"] == ["regex"]
    ]
    assert regex["prefixItems"][2] == {
        "type": "string",
        "format": "re2",
        "maxLength": MAX_PATTERN_LENGTH,
        "pattern": r"^[^\x00]*$",
    }


def test_docs_serve_html(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "swagger-ui" in response.text
    assert "/openapi.json" in response.text
