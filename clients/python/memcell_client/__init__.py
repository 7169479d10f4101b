"""Python client of the memcell REST API.

:class:`MemCellRepository` offers the methods of EverMemOS's
``MemCellRawRepository`` over HTTP; it needs the standard library only.
"""

from .errors import (
    Conflict,
    Forbidden,
    InvalidArgument,
    MemCellError,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from .models import MemCell, Message, RawData
from .repository import MemCellRepository, ResponseInfo

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidArgument",
    "MemCell",
    "MemCellError",
    "MemCellRepository",
    "Message",
    "NotFound",
    "RawData",
    "ResponseInfo",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
]
