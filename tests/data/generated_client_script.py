"""A program that talks to ayeto through nothing but the client openapi-python-client generates.

tests/test_generated_client.py generates the package `ayeto_client` from a running server's
`/openapi.json`, checks this program with `mypy --strict` and runs it as
`generated_client_script.py BASE_URL KEY`; it prints one line per call, which the test compares.
"""

from __future__ import annotations

import sys
from uuid import UUID

from ayeto_client import AuthenticatedClient
from ayeto_client.api.conversation import (
    delete_conversation,
    find_conversations,
    get_conversation,
)
from ayeto_client.models import (
    DbParams,
    ErrorBody,
    FilterField,
    FilterOperator,
    PublicConversationView,
    SortKey,
    SortOrder,
)

SAMPLE_ID = UUID("550e8400-e29b-41d4-a716-446655440000")
SINCE = 1735689600000  # 2025-01-01
UNKNOWN_ASSISTANT = UUID("123e4567-e89b-12d3-a456-426614174000")


def ids(found: list[PublicConversationView] | ErrorBody | None) -> str:
    assert isinstance(found, list), found
    return " ".join(str(conversation.id) for conversation in found)


def main(base_url: str, key: str) -> None:
    client = AuthenticatedClient(
        base_url=base_url, token=key, prefix="", auth_header_name="uni-api-key"
    )
    with client:
        print("find:", ids(find_conversations.sync(client=client)))

        typed = DbParams(
            filters=[
                [FilterField.CREATED_TIMESTAMP, FilterOperator.GT, SINCE],
                [FilterField.MODEL, FilterOperator.EQ, "gpt-4o"],
                [FilterField.ORGANIZATION_ID, FilterOperator.EQ, None],
                [FilterField.ASSISTANT_ID, FilterOperator.NE, UNKNOWN_ASSISTANT],
                [FilterField.NAME, FilterOperator.REGEX, "(?i)^[bm]"],
            ],
            sort_key=SortKey.NAME,
            sort_order=SortOrder.ASC,
            limit_from=0,
            limit_to=10,
        )
        print("find typed:", ids(find_conversations.sync(client=client, body=typed)))

        conversation = get_conversation.sync(client=client, entity_id=SAMPLE_ID)
        assert isinstance(conversation, PublicConversationView), conversation
        print("get:", conversation.id, conversation.name, conversation.accessed.user_id)

        print("delete:", delete_conversation.sync(client=client, entity_id=SAMPLE_ID))

        gone = get_conversation.sync_detailed(client=client, entity_id=SAMPLE_ID)
        assert isinstance(gone.parsed, ErrorBody), gone
        print("get again:", gone.status_code.value, gone.parsed.detail)

    stranger = AuthenticatedClient(
        base_url=base_url, token="ayeto-" + "0" * 64, prefix="", auth_header_name="uni-api-key"
    )
    with stranger:
        refused = find_conversations.sync_detailed(client=stranger)
        assert isinstance(refused.parsed, ErrorBody), refused
        print(
            "wrong key:",
            refused.status_code.value,
            refused.parsed.detail,
            refused.headers["WWW-Authenticate"],
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
