"""A typed Python client of the ayeto Conversation API v3, sync (`Client`) and async
(`AsyncClient`), for `ayeto serve` or the hosted service.

It needs only httpx and pydantic, and imports nothing of the server: `pip install ayeto` is
enough for it, `ayeto[server]` adds the server. See docs/client.md.
"""

from ayeto.client.aio import AsyncClient
from ayeto.client.core import Conversation, DeleteResult, FilterLike, RawConversation
from ayeto.client.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    AyetoError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from ayeto.client.filters import F, Filter, FilterField, FilterValue, Operator, SortKey, SortOrder
from ayeto.client.sync import Client
from ayeto.models import BasicLLMMessageView, ImgGenMessage, ModelMeta

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "AyetoError",
    "BadRequestError",
    "BasicLLMMessageView",
    "Client",
    "Conversation",
    "DeleteResult",
    "F",
    "Filter",
    "FilterField",
    "FilterLike",
    "FilterValue",
    "ImgGenMessage",
    "InternalServerError",
    "ModelMeta",
    "NotFoundError",
    "Operator",
    "PermissionDeniedError",
    "RateLimitError",
    "RawConversation",
    "SortKey",
    "SortOrder",
]
