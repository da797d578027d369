"""The response models of the Conversation API v3, as pydantic models.

They describe the API (OpenAPI, the typed client) and validate what `ayeto import` reads. The
server's hot path does not go through them: the store hands out plain dicts of exactly this shape,
which are serialized once (see `ayeto.store.sql`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# The format states the range; bounds as numbers would reach clients as floats, and 2**63 - 1 is
# not a float.
INT64_SCHEMA: dict[str, Any] = {"type": "integer", "format": "int64"}
# A UUID as the API takes it: hyphenated, in any case.
UUID_PATTERN = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
# PostgreSQL text cannot hold NUL, so no string anywhere may, whatever the store.
NO_NUL = r"^[^\x00]*$"

# Timestamps are integer milliseconds since the Unix epoch, kept as 64-bit integers.
Timestamp = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX), WithJsonSchema(INT64_SCHEMA)]
Text = Annotated[StrictStr, Field(pattern=NO_NUL)]

Role = Literal["system", "user", "assistant", "tool", "internal"]
ROLES: tuple[str, ...] = get_args(Role)


def _no_defaults(schema: dict[str, Any]) -> None:
    # A response carries every field, so a default would describe nothing.
    for field in schema["properties"].values():
        field.pop("default", None)


class _Model(BaseModel):
    # Responses always carry every field, so the response schemas mark every field required;
    # the defaults only fill in what an imported document leaves out.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_serialization_defaults_required=True,
        json_schema_extra=_no_defaults,
    )


class ImgGenMessage(_Model):
    """Generated image data attached to a message.

    The spec names it without defining it, and the hosted service may carry more than these
    fields: any other field is kept as given and returned with it (import and mirror alike).
    """

    model_config = ConfigDict(extra="allow")

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


class ErrorBody(BaseModel):
    """Every error response."""

    detail: str = Field(examples=["not found, id: 550e8400-e29b-41d4-a716-446655440000"])
