"""MemCellRepository against a real memcell server (embedded primary, Pebble KV)."""

from __future__ import annotations

import itertools
import os
import unittest
import time
from unittest import mock
import uuid
from datetime import datetime, timedelta, timezone
from typing import List, Optional

import memcell_server
from memcell_server import Server

from memcell_client import (
    Conflict,
    InvalidArgument,
    MemCell,
    MemCellError,
    MemCellRepository,
    Message,
    NotFound,
    RawData,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from memcell_client import repository as repository_module

TOKEN = "python-client-test-token-0123456789"

servers: List[Server] = []
plain: Optional[Server] = None
guarded: Optional[Server] = None


def setUpModule() -> None:
    global plain, guarded
    # Sync mirror mode: the tests read each write's KV outcome from its
    # answer. AsyncModeTest runs a server in the default mode.
    plain = Server(args=["--mirror-mode", "sync"])
    servers.append(plain)
    guarded = Server({"MEMCELL_API_TOKEN": TOKEN}, ["--mirror-mode", "sync"])
    servers.append(guarded)


def tearDownModule() -> None:
    codes = [s.stop() for s in servers]
    if any(codes):
        raise RuntimeError(f"memcell serve exit statuses after SIGTERM: {codes}")


_years = itertools.count(1)


def base_time() -> datetime:
    """A time range of its own for each test (the servers are shared)."""
    return datetime(1990 + next(_years), 3, 1, 12, 0, tzinfo=timezone.utc)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class RepositoryTest(unittest.TestCase):
    repo: MemCellRepository

    def setUp(self) -> None:
        assert plain is not None
        self.repo = MemCellRepository(plain.url)

    def add(self, user: Optional[str], when: datetime, **kwargs) -> MemCell:
        return self.repo.append_memcell(MemCell(user_id=user, timestamp=when, **kwargs))

    def test_append_get_datetimes_and_extras(self) -> None:
        when = datetime(2026, 1, 12, 18, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
        cell = MemCell(
            user_id=uid("alice"),
            timestamp=when,
            summary="Kyoto in April",
            participants=["alice", "bob"],
            keywords=["kyoto"],
            type="Conversation",
            original_data=[
                RawData(
                    data_type="Conversation",
                    messages=[Message(content="Kyoto in April?", files=["a.png"], extend={"k": "v"}, extra={"speaker": "alice"})],
                    meta={"source": "chat"},
                    extra={"segment_no": 3},
                )
            ],
            event_log={"facts": ["f1"]},
            extend={"embedding": [0.5, 0.25]},
            extra={"tenant_id": "t1", "session_id": {"n": 1}},
        )
        stored = self.repo.append_memcell(cell)
        self.assertEqual(self.repo.last_response.status, 201)
        self.assertEqual(self.repo.last_response.mirror, "ok")
        self.assertIsNone(self.repo.last_response.validation)
        self.assertRegex(stored.event_id or "", r"^[0-9a-f]{24}$")
        self.assertEqual(stored.timestamp, datetime(2026, 1, 12, 10, 30, 0, 123000, tzinfo=timezone.utc))
        self.assertEqual(stored.timestamp.utcoffset(), timedelta(0))
        self.assertIsNotNone(stored.created_at)
        self.assertEqual(stored.created_at.tzinfo, timezone.utc)
        self.assertEqual(stored.created_at, stored.updated_at)
        self.assertIsNone(stored.deleted_at)
        self.assertEqual(stored.deleted_id, 0)
        self.assertEqual(stored.revision, 1)
        self.assertEqual(stored.extra, {"tenant_id": "t1", "session_id": {"n": 1}})
        self.assertEqual(stored.original_data[0].extra, {"segment_no": 3})
        self.assertEqual(stored.original_data[0].messages[0].extra, {"speaker": "alice"})
        self.assertEqual(stored.original_data[0].meta, {"source": "chat"})

        got = self.repo.get_by_event_id(stored.event_id)
        self.assertEqual(got, stored)
        self.assertEqual(self.repo.last_response.validation, "consistent")
        self.assertIsNone(self.repo.last_response.mirror)
        self.assertRegex(self.repo.last_response.request_id or "", r".+")
        self.repo.get_by_event_id(stored.event_id, validate=False)
        self.assertIsNone(self.repo.last_response.validation)

        # The dataclasses hold the whole representation: nothing lost.
        _, raw = self.repo.request("GET", "/v1/memcells/" + stored.event_id)
        self.assertEqual(got.to_dict(), raw)

        # A copy appended under a new id keeps every field and extra.
        again = self.repo.append_memcell(MemCell.from_dict({**got.to_dict(), "event_id": "0" * 23 + "1"}))
        self.assertEqual(again.event_id, "0" * 23 + "1")
        self.assertEqual(again.original_data, got.original_data)
        self.assertEqual(again.extra, got.extra)
        self.assertEqual(again.timestamp, got.timestamp)
        with self.assertRaises(Conflict) as ctx:
            self.repo.append_memcell(again)
        self.assertEqual(ctx.exception.status, 409)
        self.assertTrue(self.repo.hard_delete_by_event_id(again.event_id))

    def test_missing_ids(self) -> None:
        absent = uuid.uuid4().hex[:24]
        self.assertIsNone(self.repo.get_by_event_id(absent))
        self.assertIsNone(self.repo.get_by_event_id("not-an-id"))
        self.assertIsNone(self.repo.update_by_event_id(absent, {"summary": "x"}))
        self.assertFalse(self.repo.delete_by_event_id(absent))
        self.assertFalse(self.repo.hard_delete_by_event_id(absent))
        self.assertFalse(self.repo.restore_by_event_id(absent))
        for bad in ("not-an-id", absent[:23], absent + "0", "g" * 24):
            self.assertIsNone(self.repo.update_by_event_id(bad, {"summary": "x"}))
            self.assertFalse(self.repo.delete_by_event_id(bad))
            self.assertFalse(self.repo.hard_delete_by_event_id(bad))
            self.assertFalse(self.repo.restore_by_event_id(bad))
        self.assertIsNone(self.repo.last_response)  # no request was made

        strict = MemCellRepository(plain.url, strict=True)
        with self.assertRaises(NotFound) as ctx:
            strict.get_by_event_id(absent)
        err = ctx.exception
        self.assertEqual((err.status, err.code), (404, "not_found"))
        self.assertTrue(err.message)
        self.assertTrue(err.request_id)
        self.assertIsInstance(err, MemCellError)
        for call in (
            lambda: strict.get_by_event_id("not-an-id"),
            lambda: strict.hard_delete_by_event_id("not-an-id"),
            lambda: strict.update_by_event_id(absent, {"summary": "x"}),
            lambda: strict.delete_by_event_id(absent),
            lambda: strict.restore_by_event_id(absent),
        ):
            with self.assertRaises(NotFound):
                call()

    def test_batch_get(self) -> None:
        when = base_time()
        user = uid("batch")
        a = self.add(user, when, summary="a", extra={"tenant_id": "x"})
        b = self.add(user, when + timedelta(minutes=1), summary="b")
        absent = uuid.uuid4().hex[:24]
        with self.assertLogs("memcell_client", "WARNING") as logs:
            got = self.repo.get_by_event_ids([b.event_id, "bogus", absent, a.event_id])
        self.assertIn("bogus", logs.output[0])
        self.assertEqual(list(got), [b.event_id, a.event_id])
        self.assertEqual(got[a.event_id], a)
        self.assertIsNone(self.repo.last_response.validation)
        self.repo.get_by_event_ids([a.event_id], validate=True)
        self.assertEqual(self.repo.last_response.validation, "consistent")
        part = self.repo.get_by_event_ids([a.event_id], fields=["summary"])
        self.assertEqual(part[a.event_id].summary, "a")
        self.assertIsNone(part[a.event_id].timestamp)
        self.assertEqual(self.repo.get_by_event_ids([]), {})

        # Over the batch bound the ids go in several requests, the order and
        # the worst validation outcome kept.
        saved = repository_module.MAX_BATCH_IDS
        repository_module.MAX_BATCH_IDS = 1
        try:
            got = self.repo.get_by_event_ids([b.event_id, absent, a.event_id], validate=True)
        finally:
            repository_module.MAX_BATCH_IDS = saved
        self.assertEqual(list(got), [b.event_id, a.event_id])
        self.assertEqual(self.repo.last_response.validation, "consistent")

    def test_update(self) -> None:
        cell = self.add(uid("upd"), base_time(), summary="before", extra={"tenant_id": "t"})
        new_time = datetime(2030, 5, 6, 7, 8, 9, 999999, tzinfo=timezone.utc)
        updated = self.repo.update_by_event_id(
            cell.event_id, {"summary": "after", "timestamp": new_time, "session_id": "s1", "tenant_id": None}
        )
        self.assertEqual(self.repo.last_response.mirror, "ok")
        self.assertEqual(updated.summary, "after")
        self.assertEqual(updated.timestamp, new_time.replace(microsecond=999000))
        self.assertEqual(updated.revision, 2)
        self.assertGreaterEqual(updated.updated_at, cell.updated_at)
        self.assertEqual(updated.created_at, cell.created_at)
        self.assertEqual(updated.extra.get("session_id"), "s1")
        self.assertEqual(self.repo.get_by_event_id(cell.event_id), updated)
        with self.assertRaises(InvalidArgument):
            self.repo.update_by_event_id(cell.event_id, {"deleted_id": 5})

    def test_delete_restore_by_id(self) -> None:
        cell = self.add(uid("del"), base_time())
        self.assertTrue(self.repo.delete_by_event_id(cell.event_id, deleted_by="tester"))
        self.assertEqual(self.repo.last_response.status, 204)
        self.assertIn(self.repo.last_response.mirror, ("ok", "stale"))
        self.assertIsNone(self.repo.get_by_event_id(cell.event_id))
        self.assertFalse(self.repo.delete_by_event_id(cell.event_id))
        self.assertTrue(self.repo.restore_by_event_id(cell.event_id))
        self.assertFalse(self.repo.restore_by_event_id(cell.event_id))
        back = self.repo.get_by_event_id(cell.event_id)
        self.assertIsNone(back.deleted_at)
        self.assertIsNone(back.deleted_by)
        self.assertEqual(back.deleted_id, 0)
        self.assertTrue(self.repo.delete_by_event_id(cell.event_id))
        self.assertTrue(self.repo.hard_delete_by_event_id(cell.event_id))
        self.assertFalse(self.repo.hard_delete_by_event_id(cell.event_id))
        self.assertFalse(self.repo.restore_by_event_id(cell.event_id))

    def test_finds_counts_latest(self) -> None:
        t0 = base_time()
        alice, bob, group = uid("alice"), uid("bob"), uid("group")
        kw1, kw2 = uid("kw"), uid("kw")
        c0 = self.add(alice, t0, participants=[alice, bob], keywords=[kw1, kw2], group_id=group)
        c1 = self.add(alice, t0 + timedelta(hours=1), participants=[alice], keywords=[kw1], group_id=group)
        c2 = self.add(alice, t0 + timedelta(hours=2))
        c3 = self.add(bob, t0 + timedelta(hours=3), participants=[bob, alice], keywords=[kw2])
        ids = lambda cells: [c.event_id for c in cells]  # noqa: E731

        self.assertEqual(ids(self.repo.find_by_user_id(alice)), ids([c2, c1, c0]))
        self.assertEqual(ids(self.repo.find_by_user_id(alice, sort_desc=False)), ids([c0, c1, c2]))
        self.assertEqual(ids(self.repo.find_by_user_id(alice, limit=1, skip=1)), ids([c1]))
        self.assertEqual(ids(self.repo.find_by_group_id(group)), ids([c1, c0]))
        self.assertEqual(ids(self.repo.find_by_group_id(group, sort_desc=False)), ids([c0, c1]))
        end = t0 + timedelta(hours=3)  # exclusive: c3 is out
        self.assertEqual(ids(self.repo.find_by_time_range(t0, end)), ids([c0, c1, c2]))
        self.assertEqual(ids(self.repo.find_by_time_range(t0, end, sort_desc=True, limit=2)), ids([c2, c1]))
        self.assertEqual(
            ids(self.repo.find_by_user_and_time_range(alice, t0, t0 + timedelta(days=1))), ids([c3, c2, c1, c0])
        )
        self.assertEqual(
            ids(self.repo.find_by_user_and_time_range(bob, t0 + timedelta(minutes=1), t0 + timedelta(days=1))), ids([c3])
        )
        self.assertEqual(ids(self.repo.find_by_participants([bob])), ids([c3, c0]))
        self.assertEqual(ids(self.repo.find_by_participants([alice, bob], match_all=True)), ids([c3, c0]))
        self.assertEqual(ids(self.repo.find_by_participants([alice], limit=2)), ids([c3, c1]))
        self.assertEqual(ids(self.repo.search_by_keywords([kw1, kw2])), ids([c3, c1, c0]))
        self.assertEqual(ids(self.repo.search_by_keywords([kw1, kw2], match_all=True)), ids([c0]))
        self.assertEqual(ids(self.repo.search_by_keywords([kw2], skip=1)), ids([c0]))
        self.assertEqual(ids(self.repo.get_latest_by_user(alice, limit=2)), ids([c2, c1]))
        self.assertEqual(ids(self.repo.get_latest_by_user(alice)), ids([c2, c1, c0]))

        self.assertEqual(self.repo.count_by_user_id(alice), 3)
        self.assertEqual(self.repo.count_by_time_range(t0, end), 3)
        self.assertEqual(self.repo.count_by_time_range(t0, t0 + timedelta(days=1), user_id=bob), 1)

        # Paging: pages of 2 give the same answers as one page.
        saved = repository_module.MAX_LIMIT
        repository_module.MAX_LIMIT = 2
        try:
            self.assertEqual(ids(self.repo.find_by_user_and_time_range(alice, t0, t0 + timedelta(days=1))), ids([c3, c2, c1, c0]))
            self.assertEqual(ids(self.repo.find_by_time_range(t0, end, limit=3)), ids([c0, c1, c2]))
            self.assertEqual(ids(self.repo.find_by_user_id(alice, skip=1)), ids([c1, c0]))
        finally:
            repository_module.MAX_LIMIT = saved

    def test_bulk_delete_restore(self) -> None:
        t0 = base_time()
        alice, bob = uid("alice"), uid("bob")
        a = [self.add(alice, t0 + timedelta(hours=i)) for i in range(3)]
        b = self.add(bob, t0 + timedelta(hours=1))

        self.assertEqual(self.repo.delete_by_event_id(a[0].event_id, deleted_by="first"), True)
        self.assertEqual(self.repo.delete_by_user_id(alice, deleted_by="bulk"), 2)
        self.assertIn(self.repo.last_response.mirror, ("ok", "stale"))
        self.assertEqual(self.repo.count_by_user_id(alice), 0)
        self.assertEqual(self.repo.restore_by_user_id(alice), 3)
        self.assertEqual(self.repo.count_by_user_id(alice), 3)

        end = t0 + timedelta(hours=2)
        self.assertEqual(self.repo.delete_by_time_range(t0, end, user_id=alice), 2)
        self.assertEqual(self.repo.count_by_time_range(t0, end), 1)  # bob's
        self.assertEqual(self.repo.delete_by_time_range(t0, end), 1)
        self.assertEqual(self.repo.restore_by_time_range(t0, end, user_id=bob), 1)
        self.assertEqual(self.repo.restore_by_time_range(t0, end), 2)
        self.assertEqual(self.repo.count_by_time_range(t0, t0 + timedelta(days=1)), 4)

        self.assertEqual(self.repo.hard_delete_by_time_range(t0, end, user_id=bob), 1)
        self.assertIsNone(self.repo.get_by_event_id(b.event_id))
        self.assertFalse(self.repo.restore_by_event_id(b.event_id))
        self.assertEqual(self.repo.delete_by_event_id(a[2].event_id), True)
        self.assertEqual(self.repo.hard_delete_by_user_id(alice), 3)  # soft-deleted ones too
        self.assertEqual(self.repo.hard_delete_by_time_range(t0, t0 + timedelta(days=1)), 0)
        self.assertEqual(self.repo.count_by_time_range(t0, t0 + timedelta(days=1)), 0)

    def test_errors(self) -> None:
        t0 = base_time()
        with self.assertRaises(InvalidArgument) as ctx:
            self.repo.find_by_time_range(t0, t0 - timedelta(hours=1))
        self.assertEqual((ctx.exception.status, ctx.exception.code), (400, "invalid_argument"))
        self.assertIn("end", ctx.exception.message)
        with self.assertRaises(InvalidArgument):
            self.repo.count_by_time_range(t0, t0)
        with self.assertRaises(InvalidArgument):
            self.repo.append_memcell(MemCell(user_id="x"))  # no timestamp
        with self.assertRaises(TooLarge) as big:
            self.repo.append_memcell(MemCell(user_id="x", timestamp=t0, summary="x" * (2 << 20)))
        self.assertEqual(big.exception.status, 413)
        with self.assertRaises(InvalidArgument) as many:
            self.repo.find_by_participants([f"p{i}" for i in range(101)])
        self.assertIn("100", many.exception.message)
        with self.assertRaises(InvalidArgument):
            self.repo.find_by_user_id("x", limit=1, skip=-1)
        with self.assertRaises(ValueError):
            self.repo.find_by_user_id("x", limit=0)
        with self.assertRaises(ValueError):
            self.repo.find_by_time_range(datetime(2026, 1, 1), datetime(2026, 1, 2))  # naive
        with self.assertRaises(ValueError):
            self.repo.search_by_keywords(["a,b"])
        with self.assertRaises(ValueError):
            MemCellRepository("http://example.com:8080", token="t")
        with self.assertRaises(Unavailable) as down:
            MemCellRepository("http://127.0.0.1:1", timeout=5).count_by_user_id("x")
        self.assertIsNone(down.exception.status)

    def test_token(self) -> None:
        assert guarded is not None
        when = base_time()
        with self.assertRaises(Unauthorized) as ctx:
            MemCellRepository(guarded.url, token="wrong-token").count_by_user_id("x")
        self.assertEqual((ctx.exception.status, ctx.exception.code), (401, "unauthorized"))
        with self.assertRaises(Unauthorized):
            MemCellRepository(guarded.url).append_memcell(MemCell(user_id="x", timestamp=when))
        good = MemCellRepository(guarded.url, token=TOKEN)
        self.assertNotIn(TOKEN, repr(good))
        cell = good.append_memcell(MemCell(user_id=uid("tok"), timestamp=when))
        self.assertEqual(good.get_by_event_id(cell.event_id), cell)

    def test_tls(self) -> None:
        cert, key = memcell_server.self_signed_cert()
        server = Server({"MEMCELL_API_TOKEN": TOKEN}, ["--tls-cert", cert, "--tls-key", key])
        servers.append(server)
        self.assertTrue(server.url.startswith("https://127.0.0.1:"), server.url)
        with mock.patch.dict(os.environ, {"MEMCELL_API_TOKEN": TOKEN}):
            repo = MemCellRepository(server.url, ca_file=cert)  # the token from the environment
        cell = repo.append_memcell(MemCell(user_id=uid("tls"), timestamp=base_time()))
        self.assertEqual(repo.get_by_event_id(cell.event_id), cell)
        self.assertEqual(repo.last_response.validation, "consistent")
        with self.assertRaises(Unavailable) as ctx:
            MemCellRepository(server.url, token=TOKEN).count_by_user_id("x")  # the system CAs do not know it
        self.assertIn("CERTIFICATE_VERIFY_FAILED", str(ctx.exception))
        self.assertEqual(server.stop(), 0)


class AsyncModeTest(unittest.TestCase):
    """The server's default mirror mode: writes answer ``queued``."""

    def test_queued_then_consistent(self) -> None:
        server = Server()
        servers.append(server)
        repo = MemCellRepository(server.url)
        stored = repo.append_memcell(MemCell(user_id="async", timestamp=datetime(2026, 1, 12, tzinfo=timezone.utc), summary="s"))
        self.assertEqual(repo.last_response.mirror, "queued")
        deadline = time.monotonic() + 10
        while True:
            repo.get_by_event_id(stored.event_id)
            outcome = repo.last_response.validation
            self.assertIn(outcome, ("pending", "consistent"))
            if outcome == "consistent" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(outcome, "consistent")


if __name__ == "__main__":
    unittest.main()
