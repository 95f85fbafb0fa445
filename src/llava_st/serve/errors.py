"""Errors of the server and the HTTP answer each error gets.

:class:`ApiError` carries its HTTP status and a short machine-readable
``code``; the library's own errors about bad input
(:class:`~llava_st.errors.LlavaSTError` subclasses: a file that is not media,
a corrupt video, a box outside the frame, an unknown task) are mapped by
:func:`http_error` to a 4xx answer whose message is the library's own. Every
error answer has one JSON shape::

    {"error": {"status": 413, "code": "too_large", "message": "the upload is 120.0 MiB; the limit is 100.0 MiB"}}

Status codes: 400 malformed request (bad JSON, bad multipart), 401 missing or
wrong API key, 403 a path outside the media root (or path requests not
enabled), 404 no such file under the media root, 413 too large (upload, body,
video length, frame count, frame size), 415 not an image or a video (or a
body that is neither JSON nor multipart), 422 a well-formed request that
cannot be answered (missing or invalid field, corrupt media, a time or box
outside the media, a task for the other kind of media), 429 the queue is full
(with ``Retry-After``), 503 the server is shutting down, 504 no answer within
the request timeout.
"""

from __future__ import annotations

from ..errors import ConfigError, LlavaSTError, MediaError, ProtocolError
from ..media.errors import (
    CorruptMediaError,
    EmptyVideoError,
    FrameCountError,
    FrameRangeError,
    MediaKindError,
    MediaNotFoundError,
    UnsupportedMediaError,
)


class ApiError(LlavaSTError):
    """An error answered with HTTP ``status``; ``code`` names its kind, the message says why."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.headers = dict(headers or {})

    def to_dict(self) -> dict:
        return {"error": {"status": self.status, "code": self.code, "message": str(self)}}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class UnsupportedType(ApiError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(ApiError):
    status, code = 422, "invalid_request"


class Busy(ApiError):
    status, code = 429, "queue_full"

    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(message, headers={"Retry-After": str(int(retry_after_s))})


class Unavailable(ApiError):
    status, code = 503, "unavailable"


class Timeout(ApiError):
    status, code = 504, "timeout"


# library error -> (status, code); the first matching class wins (subclasses first)
_LIBRARY: tuple[tuple[type[Exception], int, str], ...] = (
    (MediaNotFoundError, 404, "not_found"),
    (UnsupportedMediaError, 415, "unsupported_media_type"),
    (CorruptMediaError, 422, "corrupt_media"),
    (EmptyVideoError, 422, "corrupt_media"),
    (MediaKindError, 422, "wrong_media_kind"),
    (FrameRangeError, 422, "invalid_request"),
    (FrameCountError, 422, "invalid_request"),
    (MediaError, 422, "invalid_media"),
    (ProtocolError, 422, "invalid_request"),
    (ConfigError, 422, "invalid_request"),
    (LlavaSTError, 422, "invalid_request"),
)


def http_error(exc: Exception) -> ApiError | None:
    """The :class:`ApiError` answering ``exc``: itself, the library error's mapping, or ``None``
    for an error that is not about the input (a bug or a failure of the server: answered 500)."""
    if isinstance(exc, ApiError):
        return exc
    for cls, status, code in _LIBRARY:
        if isinstance(exc, cls):
            err = ApiError(str(exc))
            err.status, err.code = status, code
            return err
    return None


__all__ = [
    "ApiError",
    "BadRequest",
    "Busy",
    "Forbidden",
    "NotFound",
    "Timeout",
    "TooLarge",
    "Unauthorized",
    "UnsupportedType",
    "Unavailable",
    "Unprocessable",
    "http_error",
]
