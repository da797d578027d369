"""The response models of the Conversation API v3, as pydantic models.

They describe the API (OpenAPI, the typed client) and validate what `ayeto import` reads. The
server's hot path does not go through them: the store hands out plain dicts of exactly this shape,
which are serialized once (see `ayeto.store.sql`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Timestamps are integer milliseconds since the Unix epoch, kept as 64-bit integers.
Timestamp = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]
# PostgreSQL text cannot hold NUL, so no string anywhere may, whatever the store.
Text = Annotated[StrictStr, Field(pattern=r"^[^\x00]*$")]

Role = Literal["system", "user", "assistant", "tool", "internal"]
ROLES: tuple[str, ...] = get_args(Role)


class _Model(BaseModel):
    # Responses always carry every field, so the response schemas mark every field required;
    # the defaults only fill in what an imported document leaves out.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )


class ImgGenMessage(_Model):
    """Generated image data attached to a message."""

    id: UUID | None = None
    timestamp: Timestamp | None = None
    model: Text
    format: Text = Field(description="Image format, e.g. `1024x1024`, `16:9`, `1440-768`.")
    hd: StrictBool = False
    prompt: Text
    content: Text = ""
    response_id: Text = ""
    image_url: Text = ""
    image_file_id: UUID | None = None


class ModelMeta(_Model):
    """Who performed an action on a conversation, and when."""

    user_id: UUID | None = Field(description="ID of the user who performed the action.")
    timestamp: Timestamp = Field(description="Unix timestamp of the action, in milliseconds.")


NEVER = ModelMeta(user_id=None, timestamp=0)


class BasicLLMMessageView(_Model):
    """One message of a conversation."""

    id: UUID
    timestamp: Timestamp = Field(description="Unix timestamp of message creation, in milliseconds.")
    role: Role
    content: Text | None = None
    reasoning_content: Text | None = None
    model: Text | None = Field(default=None, description="ID of the model used for this message.")
    img_gen: ImgGenMessage | None = None


class PublicConversationView(_Model):
    """A conversation with its messages, as every endpoint returns it."""

    id: UUID
    name: Text
    model: Text = Field(description="ID of the LLM model used.")
    img_gen_model: Text = Field(default="", description="ID of the image generation model.")
    summary: Text = Field(default="", description="Summary of the conversation, if generated.")
    organization_id: UUID | None = None
    assistant_id: UUID | None = None
    messages: list[BasicLLMMessageView] = Field(default_factory=list)
    created: ModelMeta
    updated: ModelMeta
    accessed: ModelMeta = NEVER


def _name_the_choices(schema: dict[str, Any]) -> None:
    """Lists the fields and operators the query language knows, from its own registry."""
    from ayeto.query import FIELDS, OPERATORS, SORTABLE  # the registry imports this module

    properties = schema["properties"]
    properties["sort_key"]["anyOf"][0]["enum"] = list(SORTABLE)
    field, operator, _ = properties["filters"]["anyOf"][0]["items"]["prefixItems"]
    field["enum"] = list(FIELDS)
    operator["enum"] = [str(op) for op in OPERATORS]


# Documents the request in OpenAPI only: requests themselves are parsed by `ayeto.query`, which
# answers every mistake with a precise 400 detail.
class DbParams(BaseModel):
    """The body of `find`: filters, sort and the slice of the sorted matches to return."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_name_the_choices)

    sort_key: str | None = Field(
        default=None,
        description="Field to sort by (default `updated.timestamp`).",
        examples=["name"],
    )
    sort_order: Literal[0, 1] | None = Field(
        default=None, description="0 = ascending (default), 1 = descending."
    )
    limit_from: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Index of the first match to return (default 0)."
    )
    limit_to: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Index after the last match to return (default: all)."
    )
    filters: list[tuple[str, str, str | int | None]] | None = Field(
        default=None,
        description="`[field, operator, value]` conditions, all of which must hold.",
        examples=[[["model", "==", "gpt-4o"], ["updated.timestamp", ">", 1735815581000]]],
    )


class ErrorBody(BaseModel):
    """Every error response."""

    detail: str = Field(examples=["not found, id: 550e8400-e29b-41d4-a716-446655440000"])
