"""The MemCell and its parts as dataclasses, and their JSON mapping.

Dates are timezone-aware ``datetime`` values in UTC. Fields the dataclasses
do not name (extra top-level fields such as ``tenant_id``, extra fields of a
segment or a message) are kept in ``extra`` and written back as they came, so
a round trip through the client loses nothing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional

# The fields the store manages: never sent on append.
MANAGED_FIELDS = ("revision", "created_at", "updated_at", "deleted_at", "deleted_by", "deleted_id")

_DATE_FIELDS = ("timestamp", "created_at", "updated_at", "deleted_at")

_FRACTION = re.compile(r"\.([0-9]{1,6})[0-9]*(?=[+-][0-9]{2}:[0-9]{2}$)")


def parse_datetime(value: Optional[str]) -> Optional[datetime]:
    """Parses an RFC 3339 date of the API into an aware datetime in UTC."""
    if value is None:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    # Before Python 3.11 fromisoformat takes only 3 or 6 fractional digits.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "00000")[:6], text, count=1)
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"date {value!r} has no zone")
    return dt.astimezone(timezone.utc)


def format_datetime(value: datetime) -> str:
    """Formats an aware datetime as RFC 3339 in UTC.

    Millisecond values (all the server returns) come out in the API's own
    form, ``2026-01-12T10:30:00.123Z``; finer ones keep their microseconds,
    which the server truncates. A naive datetime is refused: its zone would
    be a guess.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value!r} is naive; give it a zone (e.g. timezone.utc)")
    utc = value.astimezone(timezone.utc)
    spec = "milliseconds" if utc.microsecond % 1000 == 0 else "microseconds"
    return utc.isoformat(timespec=spec).replace("+00:00", "Z")


def to_json_value(value: Any) -> Any:
    """Converts datetimes and the dataclasses below, at any depth, to JSON values."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, (MemCell, RawData, Message)):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return value


@dataclass
class Message:
    """One message of a source segment."""

    content: Optional[str] = None
    files: Optional[List[str]] = None
    extend: Optional[Dict[str, str]] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Message":
        """Builds a Message from its JSON object; unknown keys go to ``extra``."""
        known = {"content", "files", "extend"}
        return cls(
            content=data.get("content"),
            files=data.get("files"),
            extend=data.get("extend"),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object, extra fields included."""
        out: Dict[str, Any] = {"content": self.content, "files": self.files, "extend": self.extend}
        out.update(to_json_value(self.extra))
        return out


@dataclass
class RawData:
    """One source segment a MemCell was built from (``original_data`` element)."""

    data_type: str = "Conversation"
    messages: Optional[List[Message]] = None
    meta: Optional[Dict[str, str]] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RawData":
        """Builds a RawData from its JSON object; unknown keys go to ``extra``."""
        known = {"data_type", "messages", "meta"}
        messages = data.get("messages")
        return cls(
            data_type=data.get("data_type", ""),
            messages=None if messages is None else [Message.from_dict(m) for m in messages],
            meta=data.get("meta"),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object, extra fields included."""
        out: Dict[str, Any] = {
            "data_type": self.data_type,
            "messages": None if self.messages is None else [m.to_dict() for m in self.messages],
            "meta": self.meta,
        }
        out.update(to_json_value(self.extra))
        return out


@dataclass
class MemCell:
    """A MemCell: one memory unit, with the store's audit and deletion marks.

    ``event_id`` is the 24-hex id (the MongoDB ``_id``); ``extra`` holds the
    unknown top-level fields (e.g. ``tenant_id``), kept on every round trip.
    The managed fields (``revision``, ``created_at``, ``updated_at``,
    ``deleted_at``, ``deleted_by``, ``deleted_id``) are set by the store and
    are not sent on append.
    """

    timestamp: Optional[datetime] = None
    user_id: Optional[str] = None
    event_id: Optional[str] = None
    summary: Optional[str] = None
    group_id: Optional[str] = None
    original_data: Optional[List[RawData]] = None
    participants: Optional[List[str]] = None
    type: Optional[str] = None
    subject: Optional[str] = None
    keywords: Optional[List[str]] = None
    linked_entities: Optional[List[str]] = None
    episode: Optional[str] = None
    foresight_memories: Optional[List[Any]] = None
    event_log: Optional[Dict[str, Any]] = None
    extend: Optional[Dict[str, Any]] = None
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    deleted_at: Optional[datetime] = None
    deleted_by: Optional[str] = None
    deleted_id: int = 0
    revision: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MemCell":
        """Builds a MemCell from its API representation; unknown keys go to ``extra``.

        A partial MemCell (a batch-get with ``fields``) leaves the fields it
        lacks at their defaults.
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs: Dict[str, Any] = {}
        extra: Dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                extra[key] = value
            elif key in _DATE_FIELDS:
                kwargs[key] = parse_datetime(value)
            elif key == "original_data":
                kwargs[key] = None if value is None else [RawData.from_dict(r) for r in value]
            elif key in ("deleted_id", "revision"):
                kwargs[key] = 0 if value is None else int(value)
            else:
                kwargs[key] = value
        return cls(extra=extra, **kwargs)

    def to_dict(self, *, for_append: bool = False) -> Dict[str, Any]:
        """The API representation: every known field, then the extra fields.

        With ``for_append`` the managed fields are left out, and so is
        ``event_id`` when it is None: the body of an append.
        """
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            if for_append and (f.name in MANAGED_FIELDS or (f.name == "event_id" and self.event_id is None)):
                continue
            out[f.name] = to_json_value(getattr(self, f.name))
        out.update(to_json_value(self.extra))
        return out
