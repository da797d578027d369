"""Whatever a client sends, valid by the OpenAPI document or not, the API never answers 5xx.

Schemathesis draws requests from `/openapi.json` (valid ones, and for `find` invalid ones that must
be refused) and sends them in process, with a valid key, on each backend.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from ayeto.api import create_app
from ayeto.auth import create_key
from ayeto.store import Store
from tests.factories import ALICE, conversation, message

OPERATIONS = [("/api/v3/conversation/find", mode) for mode in GenerationMode] + [
    (f"/api/v3/conversation/{name}", GenerationMode.POSITIVE) for name in ("get", "delete")
]


@pytest.fixture
def api(store: Store) -> tuple[Any, str]:
    """The API's schema, bound to an app over a store with some data, and a valid key."""
    store.upsert([conversation(ALICE, messages=[message()]) for _ in range(3)])
    key, _ = create_key(store, ALICE)
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(store)), key


@pytest.mark.parametrize(("path", "mode"), OPERATIONS)
@settings(
    max_examples=60,
    deadline=None,
    # One store serves every example: the data only needs to exist, not to be fresh.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_request_makes_the_server_fail(
    api: tuple[Any, str], path: str, mode: GenerationMode, data: st.DataObject
) -> None:
    schema, key = api
    case = data.draw(schema[path]["POST"].as_strategy(generation_mode=mode))
    case.call_and_validate(headers={"uni-api-key": key}, checks=[not_a_server_error])
