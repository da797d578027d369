"""The OpenAPI document: the API the spec publishes, and nothing the server cannot answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from ayeto import query
from ayeto.api import create_app
from ayeto.store import Store

BASE = "/api/v3/conversation"
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


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as client:
        yield client


@pytest.fixture
def openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def schema(openapi: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = openapi["components"]["schemas"][name]
    return found


def test_exactly_the_three_endpoints(openapi: dict[str, Any]) -> None:
    assert {path: list(item) for path, item in openapi["paths"].items()} == {
        f"{BASE}/find": ["post"],
        f"{BASE}/get": ["post"],
        f"{BASE}/delete": ["post"],
    }


@pytest.mark.parametrize(
    ("endpoint", "errors"),
    [
        ("find", ["400", "401", "413", "503"]),
        ("get", ["400", "401", "403", "404", "503"]),
        ("delete", ["400", "401", "403", "404", "503"]),
    ],
)
def test_each_endpoint_declares_exactly_its_errors(
    openapi: dict[str, Any], endpoint: str, errors: list[str]
) -> None:
    responses = openapi["paths"][f"{BASE}/{endpoint}"]["post"]["responses"]
    assert sorted(responses) == ["200", *errors]
    for status in errors:
        assert responses[status]["content"] == {"application/json": {"schema": ERROR_BODY}}
        assert responses[status]["description"]


def test_the_answers_of_each_endpoint(openapi: dict[str, Any]) -> None:
    def ok(endpoint: str) -> dict[str, Any]:
        answer: dict[str, Any] = openapi["paths"][f"{BASE}/{endpoint}"]["post"]["responses"]["200"]
        return answer["content"]["application/json"]["schema"]  # type: ignore[no-any-return]

    conversation = {"$ref": "#/components/schemas/PublicConversationView"}
    assert ok("find")["type"] == "array"
    assert ok("find")["items"] == conversation
    assert ok("get") == conversation
    assert ok("delete")["type"] == "string"
    assert schema(openapi, "ErrorBody")["properties"]["detail"]["type"] == "string"
    assert schema(openapi, "ErrorBody")["required"] == ["detail"]


def test_no_validation_error_is_documented(openapi: dict[str, Any]) -> None:
    # The server answers malformed input with 400 and its own detail, never FastAPI's 422.
    for item in openapi["paths"].values():
        for operation in item.values():
            assert "422" not in operation["responses"]
    assert [name for name in openapi["components"]["schemas"] if "ValidationError" in name] == []


def test_the_document_never_mentions_422(client: TestClient) -> None:
    # Model docstrings are the public descriptions of their schemas, so no internal note leaks.
    assert "422" not in client.get("/openapi.json").text


def test_the_api_key_scheme_applies_to_every_operation(openapi: dict[str, Any]) -> None:
    assert openapi["components"]["securitySchemes"] == SCHEMES
    for item in openapi["paths"].values():
        assert item["post"]["security"] == [{"uni-api-key": []}]


def test_find_takes_an_optional_db_params_body_and_no_parameters(openapi: dict[str, Any]) -> None:
    find = openapi["paths"][f"{BASE}/find"]["post"]
    assert find["requestBody"] == {
        "required": False,
        "content": {
            "application/json": {
                "schema": {"anyOf": [{"$ref": "#/components/schemas/DbParams"}, {"type": "null"}]}
            }
        },
    }
    assert "parameters" not in find


@pytest.mark.parametrize("endpoint", ["get", "delete"])
def test_entity_id_is_a_required_query_parameter(openapi: dict[str, Any], endpoint: str) -> None:
    operation = openapi["paths"][f"{BASE}/{endpoint}"]["post"]
    [parameter] = operation["parameters"]
    assert (parameter["name"], parameter["in"], parameter["required"]) == (
        "entity_id",
        "query",
        True,
    )
    assert parameter["schema"]["type"] == "string"
    assert "requestBody" not in operation


@pytest.mark.parametrize("name", list(FIELDS))
def test_models_have_exactly_the_designed_fields(openapi: dict[str, Any], name: str) -> None:
    assert list(schema(openapi, name)["properties"]) == FIELDS[name]


@pytest.mark.parametrize("name", RESPONSE_MODELS)
def test_every_response_field_is_required(openapi: dict[str, Any], name: str) -> None:
    # DESIGN.md: every field is always present in a response, so a generated client may rely on it.
    assert sorted(schema(openapi, name).get("required", [])) == sorted(FIELDS[name])


@pytest.mark.parametrize("name", RESPONSE_MODELS)
def test_response_models_allow_no_other_field(openapi: dict[str, Any], name: str) -> None:
    assert schema(openapi, name)["additionalProperties"] is False


def types(prop: dict[str, Any]) -> list[Any]:
    """The alternatives of a property: its `anyOf`, or the property itself."""
    return [
        {k: v for k, v in option.items() if k in ("type", "format", "$ref")}
        for option in prop.get("anyOf", [prop])
    ]


STRING = {"type": "string"}
TIMESTAMP = {"type": "integer"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


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
        ("BasicLLMMessageView", "timestamp", [TIMESTAMP]),
        ("BasicLLMMessageView", "role", [STRING]),
        ("BasicLLMMessageView", "content", [STRING, NULL]),
        ("BasicLLMMessageView", "reasoning_content", [STRING, NULL]),
        ("BasicLLMMessageView", "model", [STRING, NULL]),
        ("BasicLLMMessageView", "img_gen", [ref("ImgGenMessage"), NULL]),
        ("ModelMeta", "user_id", [UUID, NULL]),
        ("ModelMeta", "timestamp", [TIMESTAMP]),
        ("ImgGenMessage", "id", [UUID, NULL]),
        ("ImgGenMessage", "timestamp", [TIMESTAMP, NULL]),
        ("ImgGenMessage", "model", [STRING]),
        ("ImgGenMessage", "format", [STRING]),
        ("ImgGenMessage", "hd", [{"type": "boolean"}]),
        ("ImgGenMessage", "prompt", [STRING]),
        ("ImgGenMessage", "content", [STRING]),
        ("ImgGenMessage", "response_id", [STRING]),
        ("ImgGenMessage", "image_url", [STRING]),
        ("ImgGenMessage", "image_file_id", [UUID, NULL]),
        ("DbParams", "sort_key", [STRING, NULL]),
        ("DbParams", "sort_order", [TIMESTAMP, NULL]),
        ("DbParams", "limit_from", [TIMESTAMP, NULL]),
        ("DbParams", "limit_to", [TIMESTAMP, NULL]),
        ("DbParams", "filters", [{"type": "array"}, NULL]),
    ],
)
def test_field_types(openapi: dict[str, Any], name: str, field: str, expected: list[Any]) -> None:
    assert types(schema(openapi, name)["properties"][field]) == expected


def test_message_items_and_roles(openapi: dict[str, Any]) -> None:
    conversation = schema(openapi, "PublicConversationView")["properties"]
    assert conversation["messages"]["items"] == ref("BasicLLMMessageView")
    role = schema(openapi, "BasicLLMMessageView")["properties"]["role"]
    assert role["enum"] == ["system", "user", "assistant", "tool", "internal"]
    sort_order = schema(openapi, "DbParams")["properties"]["sort_order"]["anyOf"][0]
    assert sort_order["enum"] == [0, 1]


def test_db_params_name_every_field_and_operator(openapi: dict[str, Any]) -> None:
    properties = schema(openapi, "DbParams")["properties"]
    assert properties["sort_key"]["anyOf"][0]["enum"] == list(query.SORTABLE)
    field, operator, value = properties["filters"]["anyOf"][0]["items"]["prefixItems"]
    assert field == {"type": "string", "enum": list(query.FIELDS)}
    assert operator == {"type": "string", "enum": ["==", "!=", "<", ">", "<=", ">=", "regex"]}
    assert types(value) == [STRING, TIMESTAMP, NULL]


def test_docs_serve_html(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "swagger-ui" in response.text
    assert "/openapi.json" in response.text
