"""The dataclasses and their JSON mapping, without a server."""

from __future__ import annotations

import json
import unittest
from datetime import datetime, timedelta, timezone

import memcell_server  # noqa: F401 (puts the package on sys.path)

import memcell_client as mc
from memcell_client import MemCell, Message, RawData
from memcell_client.errors import error_for_status
from memcell_client.models import format_datetime, parse_datetime

API_DOC = {
    "event_id": "6b100783f7eca37c782fdbc2",
    "user_id": "alice",
    "timestamp": "2026-01-12T10:30:00.123Z",
    "summary": None,
    "group_id": "g",
    "original_data": [
        {
            "data_type": "Conversation",
            "messages": [{"content": "hi", "files": None, "extend": {"a": "b"}, "x": 1}],
            "meta": None,
            "foo": "bar",
        }
    ],
    "participants": ["alice"],
    "type": "Conversation",
    "subject": None,
    "keywords": None,
    "linked_entities": None,
    "episode": None,
    "foresight_memories": [{"any": [1, 2]}],
    "event_log": {"facts": ["f"]},
    "extend": {"embedding": [0.5]},
    "created_at": "2026-12-02T11:56:51.254Z",
    "updated_at": "2026-12-02T11:56:51.254Z",
    "deleted_at": None,
    "deleted_by": None,
    "deleted_id": 0,
    "revision": 1,
    "tenant_id": "t1",
}


class ModelsTest(unittest.TestCase):
    def test_dates(self) -> None:
        cases = [
            ("2026-01-12T10:30:00.123Z", datetime(2026, 1, 12, 10, 30, 0, 123000, tzinfo=timezone.utc)),
            ("2026-01-12T10:30:00Z", datetime(2026, 1, 12, 10, 30, tzinfo=timezone.utc)),
            ("2026-01-12T18:30:00.1+08:00", datetime(2026, 1, 12, 10, 30, 0, 100000, tzinfo=timezone.utc)),
            ("2026-01-12T10:30:00.123456789Z", datetime(2026, 1, 12, 10, 30, 0, 123456, tzinfo=timezone.utc)),
        ]
        for text, want in cases:
            with self.subTest(text=text):
                got = parse_datetime(text)
                self.assertEqual(got, want)
                self.assertIs(got.tzinfo, timezone.utc)
        self.assertIsNone(parse_datetime(None))
        with self.assertRaises(ValueError):
            parse_datetime("2026-01-12T10:30:00")
        self.assertEqual(format_datetime(cases[0][1]), "2026-01-12T10:30:00.123Z")
        self.assertEqual(format_datetime(cases[3][1]), "2026-01-12T10:30:00.123456Z")
        plus8 = datetime(2026, 1, 12, 18, 30, tzinfo=timezone(timedelta(hours=8)))
        self.assertEqual(format_datetime(plus8), "2026-01-12T10:30:00.000Z")
        with self.assertRaises(ValueError):
            format_datetime(datetime(2026, 1, 12))

    def test_round_trip(self) -> None:
        cell = MemCell.from_dict(json.loads(json.dumps(API_DOC)))
        self.assertEqual(cell.extra, {"tenant_id": "t1"})
        self.assertEqual(cell.original_data[0].extra, {"foo": "bar"})
        self.assertEqual(cell.original_data[0].messages[0].extra, {"x": 1})
        self.assertEqual(cell.timestamp, datetime(2026, 1, 12, 10, 30, 0, 123000, tzinfo=timezone.utc))
        self.assertEqual(cell.to_dict(), API_DOC)
        self.assertEqual(list(cell.to_dict())[-1], "tenant_id")

    def test_append_body(self) -> None:
        cell = MemCell.from_dict(API_DOC)
        body = cell.to_dict(for_append=True)
        for name in ("revision", "created_at", "updated_at", "deleted_at", "deleted_by", "deleted_id"):
            self.assertNotIn(name, body)
        self.assertEqual(body["event_id"], API_DOC["event_id"])
        self.assertEqual(body["tenant_id"], "t1")
        fresh = MemCell(
            timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
            original_data=[RawData(messages=[Message(content="hi")])],
        ).to_dict(for_append=True)
        self.assertNotIn("event_id", fresh)
        self.assertEqual(fresh["timestamp"], "2026-01-01T00:00:00.000Z")
        self.assertEqual(
            fresh["original_data"],
            [{"data_type": "Conversation", "messages": [{"content": "hi", "files": None, "extend": None}], "meta": None}],
        )


    def test_error_classes(self) -> None:
        want = {
            400: mc.InvalidArgument,
            401: mc.Unauthorized,
            403: mc.Forbidden,
            404: mc.NotFound,
            409: mc.Conflict,
            413: mc.TooLarge,
            415: mc.MemCellError,
            500: mc.MemCellError,
            503: mc.Unavailable,
        }
        for status, cls in want.items():
            with self.subTest(status=status):
                self.assertIs(error_for_status(status), cls)
                self.assertTrue(issubclass(cls, mc.MemCellError))
        err = mc.Forbidden("host x not allowed", code="host_not_allowed", status=403, request_id="r1")
        self.assertEqual(str(err), "403 host_not_allowed: host x not allowed (request r1)")


if __name__ == "__main__":
    unittest.main()
