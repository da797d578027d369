"""What the client raises: one tree, rooted at `AyetoError`.

    AyetoError
    └── APIError                      anything about a request to the server
        ├── APIConnectionError        no answer: the connection failed or broke
        │   └── APITimeoutError       no answer in time
        ├── APIResponseValidationError  an answer that is not what the API says it sends
        └── APIStatusError            an error status, with its `detail` and request id
            ├── BadRequestError           400
            ├── AuthenticationError       401
            ├── PermissionDeniedError     403
            ├── NotFoundError             404
            ├── RateLimitError            429, with `retry_after`
            └── InternalServerError       500 and above

`AyetoError` itself is also raised, alone, when the client cannot be set up (no API key).
"""

from __future__ import annotations

from typing import Final

import httpx

REQUEST_ID_HEADER: Final = "X-Request-ID"


class AyetoError(Exception):
    """Every error the client raises."""


class APIError(AyetoError):
    """A request that did not end in the answer asked for."""

    def __init__(self, message: str, request: httpx.Request) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke before a complete answer."""

    def __init__(self, request: httpx.Request, message: str = "connection error") -> None:
        super().__init__(message, request)


class APITimeoutError(APIConnectionError):
    """No complete answer within the client's timeout."""

    def __init__(self, request: httpx.Request) -> None:
        super().__init__(request, "request timed out")


class APIResponseValidationError(APIError):
    """An answer that is not JSON, or not of the shape the API describes."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message, response.request)
        self.response = response
        self.status_code = response.status_code


class APIStatusError(APIError):
    """An error status (4xx, 5xx) and the `detail` the server gave for it."""

    def __init__(self, detail: str, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.detail = detail
        self.response = response
        self.request_id = response.headers.get(REQUEST_ID_HEADER)
        super().__init__(f"{response.status_code}: {detail}", response.request)


class BadRequestError(APIStatusError):
    """400: a malformed body, filter or parameter, or a query over the server's limits."""


class AuthenticationError(APIStatusError):
    """401: no key, or a key that does not grant access."""


class PermissionDeniedError(APIStatusError):
    """403: the conversation belongs to another user."""


class NotFoundError(APIStatusError):
    """404: no conversation with that id."""


class RateLimitError(APIStatusError):
    """429: the key is over its rate limit; `retry_after` is the server's `Retry-After`, in
    seconds, or None if it sent none."""

    def __init__(self, detail: str, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(detail, response)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """500 and above: a fault of the server, or of what stands in front of it."""


_BY_STATUS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
}


def status_error(
    detail: str, response: httpx.Response, retry_after: float | None
) -> APIStatusError:
    """The exception that stands for `response`'s error status."""
    status = response.status_code
    if status == 429:
        return RateLimitError(detail, response, retry_after)
    if status >= 500:
        return InternalServerError(detail, response)
    return _BY_STATUS.get(status, APIStatusError)(detail, response)
