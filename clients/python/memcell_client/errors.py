"""Typed exceptions for the memcell API's error answers.

The API answers errors as ``{"error": {"code": "...", "message": "..."}}``;
each status the client knows maps to a subclass of :class:`MemCellError`.
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class MemCellError(Exception):
    """An error answer of the memcell API, or a failure to reach it.

    ``code`` is the API's error code (``invalid_argument``, ``not_found``,
    ...), ``message`` its message, ``status`` the HTTP status (``None`` when
    no answer arrived) and ``request_id`` the answer's ``X-Request-Id``, the
    key to the server's log.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        status: Optional[int] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.request_id:
            text += f" (request {self.request_id})"
        return text


class InvalidArgument(MemCellError):
    """400: bad input (a field, parameter, id, range or bound); nothing was written."""


class Unauthorized(MemCellError):
    """401: the server needs a valid API token."""


class Forbidden(MemCellError):
    """403: the request was refused (``host_not_allowed``)."""


class NotFound(MemCellError):
    """404: no such MemCell (absent, or soft-deleted for reads)."""


class Conflict(MemCellError):
    """409: a MemCell with this event_id exists already."""


class TooLarge(MemCellError):
    """413: the request body is over the server's limit (1 MiB by default)."""


class Unavailable(MemCellError):
    """503, or no answer at all: a store is down, the request ran past the
    server's time limit, or the server could not be reached."""


_BY_STATUS: Dict[int, Type[MemCellError]] = {
    400: InvalidArgument,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    503: Unavailable,
}


def error_for_status(status: int) -> Type[MemCellError]:
    """The exception class for an HTTP error status (MemCellError for the rest)."""
    return _BY_STATUS.get(status, MemCellError)
