"""The typed exceptions of answers a test server cannot be made to give on
demand (a store down: 503; a host refused: 403; a proxy's page), from a
stub HTTP server that answers each request as told."""

from __future__ import annotations

import json
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional, Tuple

import memcell_server  # noqa: F401 (puts the package on sys.path)

from memcell_client import Forbidden, MemCellError, MemCellRepository, Unavailable

# The answer the stub gives next: status, headers, body.
Answer = Tuple[int, Dict[str, str], bytes]


class _Stub(BaseHTTPRequestHandler):
    answer: Answer = (200, {}, b"")
    seen: Optional[str] = None

    def _reply(self) -> None:
        type(self).seen = f"{self.command} {self.path}"
        status, headers, body = type(self).answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reply

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class ErrorAnswersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()
        cls.repo = MemCellRepository(f"http://127.0.0.1:{cls.httpd.server_address[1]}")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.httpd.shutdown()
        cls.httpd.server_close()

    def answer(self, status: int, body: bytes, **headers: str) -> None:
        _Stub.answer = (status, {"Content-Type": "application/json", **headers}, body)

    def test_unavailable(self) -> None:
        self.answer(503, _error("unavailable", "primary store unavailable"), **{"X-Request-Id": "r503"})
        with self.assertRaises(Unavailable) as ctx:
            self.repo.count_by_user_id("u")
        err = ctx.exception
        self.assertEqual((err.status, err.code, err.message, err.request_id), (503, "unavailable", "primary store unavailable", "r503"))
        self.assertEqual(_Stub.seen, "GET /v1/memcells/count?user_id=u")
        self.assertEqual(self.repo.last_response.status, 503)
        self.assertEqual(str(err), "503 unavailable: primary store unavailable (request r503)")

    def test_forbidden(self) -> None:
        self.answer(403, _error("host_not_allowed", "host x is not allowed"))
        with self.assertRaises(Forbidden) as ctx:
            self.repo.get_by_event_id("0" * 24)
        self.assertEqual((ctx.exception.status, ctx.exception.code), (403, "host_not_allowed"))

    def test_proxy_page(self) -> None:
        # A proxy's own error page: the class by status, its text as the message.
        _Stub.answer = (503, {"Content-Type": "text/html"}, b"<html>upstream down</html>")
        with self.assertRaises(Unavailable) as ctx:
            self.repo.find_by_user_id("u")
        self.assertEqual((ctx.exception.status, ctx.exception.code), (503, ""))
        self.assertEqual(ctx.exception.message, "<html>upstream down</html>")
        self.answer(502, b"")
        with self.assertRaises(MemCellError) as bad:
            self.repo.count_by_user_id("u")
        self.assertIs(type(bad.exception), MemCellError)
        self.assertEqual(bad.exception.message, "HTTP 502")

    def test_headers_exposed(self) -> None:
        self.answer(200, b'{"count": 3}', **{"Memcell-Validation": "pending", "Memcell-Mirror": "stale"})
        self.assertEqual(self.repo.count_by_user_id("u"), 3)
        last = self.repo.last_response
        self.assertEqual((last.status, last.validation, last.mirror), (200, "pending", "stale"))

    def test_not_json(self) -> None:
        self.answer(200, b"ok")
        with self.assertRaises(MemCellError) as ctx:
            self.repo.count_by_user_id("u")
        self.assertIn("not JSON", ctx.exception.message)


if __name__ == "__main__":
    unittest.main()
