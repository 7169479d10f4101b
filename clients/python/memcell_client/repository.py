"""MemCellRepository: the memcell REST API behind EverMemOS's repository methods."""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import re
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .errors import MemCellError, NotFound, Unavailable, error_for_status
from .models import MemCell, format_datetime, to_json_value

log = logging.getLogger("memcell_client")

#: Page size the API allows at most (``limit`` of the list route).
MAX_LIMIT = 1000
#: Ids of one batch-get at most.
MAX_BATCH_IDS = 1000
#: Values of one list parameter (``participants``, ``keywords``) at most.
MAX_LIST_PARAM_VALUES = 100

_EVENT_ID = re.compile(r"^[0-9a-fA-F]{24}$")

# Worst first, as the server ranks batch outcomes.
_VALIDATION_RANK = {"inconsistent": 0, "error": 1, "missing": 2, "pending": 3, "consistent": 4}


@dataclass(frozen=True)
class ResponseInfo:
    """What the server said about a call besides its result.

    ``validation`` is the ``Memcell-Validation`` header (``consistent``,
    ``inconsistent``, ``missing``, ``error``, or ``pending`` when the KV
    write is still queued; None when the read was not validated),
    ``mirror`` the ``Memcell-Mirror`` header (``ok``, ``stale``,
    ``failed``, ``skipped``, ``deferred``, or ``queued`` in the server's
    async mirror mode; None for reads), ``request_id`` the
    ``X-Request-Id``.
    """

    status: int
    request_id: Optional[str] = None
    validation: Optional[str] = None
    mirror: Optional[str] = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MemCellRepository:
    """A client of the memcell REST API with the methods of EverMemOS's
    ``MemCellRawRepository``, by name and meaning.

    Reads hide soft-deleted MemCells; time ranges are half-open
    (``start <= timestamp < end``); datetimes must carry a zone. As in
    EverMemOS, a MemCell that is not there is an answer, not an error:
    ``get_by_event_id`` and ``update_by_event_id`` return None, the
    by-id deletes and restore return False. With ``strict=True`` they raise
    :class:`NotFound` instead. Every other error answer raises a subclass of
    :class:`MemCellError`.

    After each call, :attr:`last_response` (per thread) holds the validation
    outcome and mirror status the server reported.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        token: Optional[str] = None,
        *,
        ca_file: Optional[str] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        timeout: float = 35.0,
        strict: bool = False,
        allow_insecure_token: bool = False,
    ) -> None:
        """Connects to the server at ``base_url`` (http or https).

        ``token`` defaults to the environment's ``MEMCELL_API_TOKEN``; it is
        sent as ``Authorization: Bearer``. For https, ``ca_file`` names the
        CA bundle that signed the server's certificate (the system's CAs
        otherwise), or ``ssl_context`` gives the whole TLS setup. A token is
        refused over plain http to a host that is not loopback unless
        ``allow_insecure_token`` is set. ``timeout`` bounds each request in
        seconds (a little over the server's own 30 s limit by default).
        """
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"base_url {base_url!r}: want http://host:port or https://host:port")
        if parsed.username is not None or parsed.password is not None:
            raise ValueError("base_url must not hold credentials; pass token= instead")
        if token is None:
            token = os.environ.get("MEMCELL_API_TOKEN") or None
        if token and parsed.scheme == "http" and not _is_loopback(parsed.hostname) and not allow_insecure_token:
            raise ValueError(
                f"refusing to send the API token in clear text to {parsed.hostname}; "
                "use https or allow_insecure_token=True"
            )
        if ca_file is not None and ssl_context is not None:
            raise ValueError("give ca_file or ssl_context, not both")
        if parsed.scheme == "https" and ssl_context is None:
            ssl_context = ssl.create_default_context(cafile=ca_file)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.strict = strict
        self._token = token
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._ssl_context = ssl_context
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"MemCellRepository({self.base_url!r}, token={'set' if self._token else 'unset'})"

    @property
    def last_response(self) -> Optional[ResponseInfo]:
        """The server's report on this thread's last call (None before the first).

        For a call that took several requests (paging, batches over 1,000
        ids) it is the last request's, with ``validation`` the worst outcome
        among them.
        """
        return getattr(self._local, "last", None)

    # --- transport -------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        # A connection of its own per request, straight to the server (no
        # proxy from the environment: the token goes to the server only).
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=self._ssl_context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def request(
        self,
        method: str,
        path: str,
        query: Optional[Sequence[Tuple[str, str]]] = None,
        body: Any = None,
    ) -> Tuple[int, Any]:
        """Makes one API request and returns (status, decoded JSON or None).

        Error answers raise the matching :class:`MemCellError` subclass;
        network failures raise :class:`Unavailable` with status None.
        """
        url = self._prefix + path
        if query:
            url += "?" + urllib.parse.urlencode(list(query))
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(to_json_value(body), ensure_ascii=False, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        self._local.last = None
        conn = self._connect()
        try:
            try:
                conn.request(method, url, body=data, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer (413) and close before reading a
                # large body; its answer is still there to read.
                pass
            resp = conn.getresponse()
            status, hdrs, raw = resp.status, resp.headers, resp.read()
        except (OSError, http.client.HTTPException) as err:
            raise Unavailable(f"{method} {path}: {err}", code="unavailable") from err
        finally:
            conn.close()
        info = ResponseInfo(
            status=status,
            request_id=hdrs.get("X-Request-Id"),
            validation=hdrs.get("Memcell-Validation"),
            mirror=hdrs.get("Memcell-Mirror"),
            headers=dict(hdrs.items()),
        )
        self._local.last = info
        payload: Any = None
        if raw:
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
        if status >= 400:
            code, message = "", raw.decode("utf-8", "replace").strip()
            if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
                code = str(payload["error"].get("code", ""))
                message = str(payload["error"].get("message", ""))
            raise error_for_status(status)(
                message or f"HTTP {status}", code=code, status=status, request_id=info.request_id
            )
        if raw and payload is None:
            raise MemCellError(f"{method} {path}: answer is not JSON", status=status, request_id=info.request_id)
        return status, payload

    def _missing(self, err: NotFound) -> None:
        if self.strict:
            raise err

    def _valid_id(self, event_id: str) -> bool:
        # As in EverMemOS, an id that is not an ObjectId's hex is not found
        # (the API would answer 400).
        if isinstance(event_id, str) and _EVENT_ID.match(event_id):
            return True
        if self.strict:
            raise NotFound(f"event_id {event_id!r} is not a 24-hex id", code="not_found")
        self._local.last = None
        return False

    # --- single MemCells -------------------------------------------------

    def append_memcell(self, memcell: MemCell) -> MemCell:
        """Stores a new MemCell and returns it as stored (id, audit dates).

        ``memcell.event_id`` is optional; an id that exists raises Conflict.
        """
        _, data = self.request("POST", "/v1/memcells", body=memcell.to_dict(for_append=True))
        return MemCell.from_dict(data)

    def get_by_event_id(self, event_id: str, *, validate: Optional[bool] = None) -> Optional[MemCell]:
        """The live MemCell with the id, or None (an id that is not 24 hex
        digits is not found either). ``validate`` overrides the server's
        default of validating against the KV copy."""
        if not self._valid_id(event_id):
            return None
        query = [] if validate is None else [("validate", _bool(validate))]
        try:
            _, data = self.request("GET", "/v1/memcells/" + _quote(event_id), query)
        except NotFound as err:
            self._missing(err)
            return None
        return MemCell.from_dict(data)

    def get_by_event_ids(
        self,
        event_ids: Iterable[str],
        *,
        fields: Optional[Sequence[str]] = None,
        validate: bool = False,
    ) -> Dict[str, MemCell]:
        """The live MemCells among the ids, keyed by id in the order asked.

        Ids that are not 24 hex digits are skipped with a warning; more than
        1,000 ids go in several requests. With ``fields`` each MemCell holds
        only ``event_id`` and those top-level fields (a projection).
        """
        ids: List[str] = []
        for event_id in event_ids:
            if isinstance(event_id, str) and _EVENT_ID.match(event_id):
                ids.append(event_id)
            else:
                log.warning("get_by_event_ids: skipping invalid event_id %r", event_id)
        out: Dict[str, MemCell] = {}
        worst: Optional[str] = None
        for i in range(0, len(ids), MAX_BATCH_IDS):
            body: Dict[str, Any] = {"event_ids": ids[i : i + MAX_BATCH_IDS]}
            if fields is not None:
                body["fields"] = list(fields)
            if validate:
                body["validate"] = True
            _, data = self.request("POST", "/v1/memcells/batch-get", body=body)
            for key, value in data["memcells"].items():
                out[key] = MemCell.from_dict(value)
            worst = _worse(worst, self.last_response.validation if self.last_response else None)
        if ids:
            self._set_validation(worst)
        return out

    def update_by_event_id(self, event_id: str, update_data: Mapping[str, Any]) -> Optional[MemCell]:
        """Sets the given top-level fields of a live MemCell (None unsets one)
        and returns it updated, or None when there is no such live MemCell."""
        if not self._valid_id(event_id):
            return None
        try:
            _, data = self.request("PATCH", "/v1/memcells/" + _quote(event_id), body=dict(update_data))
        except NotFound as err:
            self._missing(err)
            return None
        return MemCell.from_dict(data)

    def delete_by_event_id(self, event_id: str, deleted_by: Optional[str] = None) -> bool:
        """Soft-deletes a live MemCell; False when there was none to delete."""
        query = [("deleted_by", deleted_by)] if deleted_by is not None else []
        return self._delete_one(event_id, query)

    def hard_delete_by_event_id(self, event_id: str) -> bool:
        """Removes a MemCell, live or soft-deleted; False when there was none."""
        return self._delete_one(event_id, [("hard", "true")])

    def _delete_one(self, event_id: str, query: List[Tuple[str, str]]) -> bool:
        if not self._valid_id(event_id):
            return False
        try:
            self.request("DELETE", "/v1/memcells/" + _quote(event_id), query)
        except NotFound as err:
            self._missing(err)
            return False
        return True

    def restore_by_event_id(self, event_id: str) -> bool:
        """Clears the deletion marks of a soft-deleted MemCell; False when
        no soft-deleted MemCell has the id."""
        if not self._valid_id(event_id):
            return False
        try:
            self.request("POST", "/v1/memcells/" + _quote(event_id) + "/restore")
        except NotFound as err:
            self._missing(err)
            return False
        return True

    # --- finds -----------------------------------------------------------

    def find_by_user_id(
        self, user_id: str, limit: Optional[int] = None, skip: Optional[int] = None, sort_desc: bool = True
    ) -> List[MemCell]:
        """The user's MemCells by timestamp, newest first unless ``sort_desc`` is False.

        ``limit`` None reads them all (in pages of 1,000), as does every find.
        """
        return self._find([("user_id", user_id)], limit, skip, sort_desc)

    def find_by_user_and_time_range(
        self,
        user_id: str,
        start_time: datetime,
        end_time: datetime,
        limit: Optional[int] = None,
        skip: Optional[int] = None,
        sort_desc: bool = True,
    ) -> List[MemCell]:
        """MemCells of the user, or with the user among the participants, in [start, end)."""
        query = [("user_id", user_id), ("include_participant", "true")] + _range(start_time, end_time)
        return self._find(query, limit, skip, sort_desc)

    def find_by_group_id(
        self, group_id: str, limit: Optional[int] = None, skip: Optional[int] = None, sort_desc: bool = True
    ) -> List[MemCell]:
        """The group's MemCells by timestamp, newest first unless ``sort_desc`` is False."""
        return self._find([("group_id", group_id)], limit, skip, sort_desc)

    def find_by_time_range(
        self,
        start_time: datetime,
        end_time: datetime,
        limit: Optional[int] = None,
        skip: Optional[int] = None,
        sort_desc: bool = False,
    ) -> List[MemCell]:
        """MemCells with timestamp in [start, end), oldest first by default."""
        return self._find(_range(start_time, end_time), limit, skip, sort_desc)

    def find_by_participants(
        self,
        participants: Sequence[str],
        match_all: bool = False,
        limit: Optional[int] = None,
        skip: Optional[int] = None,
        sort_desc: bool = True,
    ) -> List[MemCell]:
        """MemCells with any of the participants (all of them with ``match_all``)."""
        query = _list_param("participants", participants) + [("match_all", _bool(match_all))]
        return self._find(query, limit, skip, sort_desc)

    def search_by_keywords(
        self,
        keywords: Sequence[str],
        match_all: bool = False,
        limit: Optional[int] = None,
        skip: Optional[int] = None,
        sort_desc: bool = True,
    ) -> List[MemCell]:
        """MemCells with any of the keywords (all of them with ``match_all``)."""
        query = _list_param("keywords", keywords) + [("match_all", _bool(match_all))]
        return self._find(query, limit, skip, sort_desc)

    def get_latest_by_user(self, user_id: str, limit: int = 10) -> List[MemCell]:
        """The user's newest ``limit`` MemCells, newest first."""
        return self._find([("user_id", user_id)], limit, None, True)

    def _find(
        self, query: List[Tuple[str, str]], limit: Optional[int], skip: Optional[int], sort_desc: bool
    ) -> List[MemCell]:
        if limit is not None and limit < 1:
            raise ValueError(f"limit {limit}: want at least 1, or None for all")
        offset = skip or 0
        out: List[MemCell] = []
        while True:
            want = MAX_LIMIT if limit is None else min(MAX_LIMIT, limit - len(out))
            page_query = query + [
                ("sort", "desc" if sort_desc else "asc"),
                ("limit", str(want)),
                ("skip", str(offset)),
            ]
            _, data = self.request("GET", "/v1/memcells", page_query)
            page = [MemCell.from_dict(m) for m in data["memcells"]]
            out.extend(page)
            offset += len(page)
            if len(page) < want or (limit is not None and len(out) >= limit):
                return out

    # --- counts ----------------------------------------------------------

    def count_by_user_id(self, user_id: str) -> int:
        """How many live MemCells the user has."""
        _, data = self.request("GET", "/v1/memcells/count", [("user_id", user_id)])
        return int(data["count"])

    def count_by_time_range(self, start_time: datetime, end_time: datetime, user_id: Optional[str] = None) -> int:
        """How many live MemCells (of the user, if given) are in [start, end)."""
        query = _range(start_time, end_time)
        if user_id is not None:
            query.append(("user_id", user_id))
        _, data = self.request("GET", "/v1/memcells/count", query)
        return int(data["count"])

    # --- bulk deletes and restores ---------------------------------------

    def delete_by_user_id(self, user_id: str, deleted_by: Optional[str] = None) -> int:
        """Soft-deletes every live MemCell of the user; returns how many."""
        return self._bulk_delete(_scope(user_id, None, None), False, deleted_by)

    def hard_delete_by_user_id(self, user_id: str) -> int:
        """Removes every MemCell of the user, live or soft-deleted; returns how many."""
        return self._bulk_delete(_scope(user_id, None, None), True, None)

    def delete_by_time_range(
        self,
        start_time: datetime,
        end_time: datetime,
        user_id: Optional[str] = None,
        deleted_by: Optional[str] = None,
    ) -> int:
        """Soft-deletes every live MemCell in [start, end) (of the user, if given)."""
        return self._bulk_delete(_scope(user_id, start_time, end_time), False, deleted_by)

    def hard_delete_by_time_range(self, start_time: datetime, end_time: datetime, user_id: Optional[str] = None) -> int:
        """Removes every MemCell in [start, end) (of the user, if given)."""
        return self._bulk_delete(_scope(user_id, start_time, end_time), True, None)

    def restore_by_user_id(self, user_id: str) -> int:
        """Restores every soft-deleted MemCell of the user; returns how many."""
        _, data = self.request("POST", "/v1/memcells/restore", _scope(user_id, None, None))
        return int(data["restored"])

    def restore_by_time_range(self, start_time: datetime, end_time: datetime, user_id: Optional[str] = None) -> int:
        """Restores every soft-deleted MemCell in [start, end) (of the user, if given)."""
        _, data = self.request("POST", "/v1/memcells/restore", _scope(user_id, start_time, end_time))
        return int(data["restored"])

    def _bulk_delete(self, query: List[Tuple[str, str]], hard: bool, deleted_by: Optional[str]) -> int:
        if hard:
            query.append(("hard", "true"))
        if deleted_by is not None:
            query.append(("deleted_by", deleted_by))
        _, data = self.request("DELETE", "/v1/memcells", query)
        return int(data["deleted"])

    def _set_validation(self, validation: Optional[str]) -> None:
        last = self.last_response
        if last is not None and last.validation != validation:
            self._local.last = ResponseInfo(last.status, last.request_id, validation, last.mirror, last.headers)


def _quote(event_id: str) -> str:
    return urllib.parse.quote(event_id, safe="")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _range(start_time: datetime, end_time: datetime) -> List[Tuple[str, str]]:
    return [("start", format_datetime(start_time)), ("end", format_datetime(end_time))]


def _scope(user_id: Optional[str], start_time: Optional[datetime], end_time: Optional[datetime]) -> List[Tuple[str, str]]:
    query: List[Tuple[str, str]] = []
    if user_id is not None:
        query.append(("user_id", user_id))
    if start_time is not None and end_time is not None:
        query += _range(start_time, end_time)
    return query


def _list_param(name: str, values: Sequence[str]) -> List[Tuple[str, str]]:
    if isinstance(values, str):
        raise TypeError(f"{name}: want a list of strings, not a string")
    for value in values:
        # The server splits values at commas, so such a value cannot be asked for.
        if "," in value:
            raise ValueError(f"{name}: value {value!r} holds a comma, which the API reads as a separator")
    return [(name, value) for value in values]


def _worse(a: Optional[str], b: Optional[str]) -> Optional[str]:
    if a is None:
        return b
    if b is None:
        return a
    return a if _VALIDATION_RANK.get(a, 0) <= _VALIDATION_RANK.get(b, 0) else b
