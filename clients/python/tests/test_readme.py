"""The Python examples of README.md and clients/python/README.md, run as
written against a server in its default configuration (async mirror mode)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import unittest
from typing import List

import memcell_server
from memcell_server import Server

DEFAULT_URL = "http://127.0.0.1:8080"


def example(readme: str) -> str:
    """The python block of readme that connects to DEFAULT_URL (one only)."""
    with open(readme, encoding="utf-8") as f:
        blocks = re.findall(r"^```python\n(.*?)^```$", f.read(), re.S | re.M)
    runnable = [b for b in blocks if f'MemCellRepository("{DEFAULT_URL}")' in b]
    if len(runnable) != 1:
        raise AssertionError(f"{readme}: {len(runnable)} python examples connect to {DEFAULT_URL}, want 1")
    return runnable[0]


class ReadmeExamplesTest(unittest.TestCase):
    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server()

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.server.stop() != 0:
            raise RuntimeError("memcell serve did not exit 0 on SIGTERM")

    def run_example(self, readme: str) -> List[str]:
        code = example(os.path.join(memcell_server.REPO_ROOT, readme)).replace(DEFAULT_URL, self.server.url)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, readme, "exec"), {"__name__": "readme_example"})
        return out.getvalue().splitlines()

    def test_readme(self) -> None:
        lines = self.run_example("README.md")
        self.assertEqual(len(lines), 2, lines)
        self.assertIn(lines[0], ("consistent", "pending"))
        self.assertRegex(lines[1], r"^\['[0-9a-f]{24}'(, '[0-9a-f]{24}')*\]$")

    def test_client_readme(self) -> None:
        lines = self.run_example("clients/python/README.md")
        self.assertEqual(len(lines), 3, lines)
        # The default mirror mode queues the KV write behind the answer.
        self.assertRegex(lines[0], r"^[0-9a-f]{24} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+00:00 queued$")
        self.assertIn(lines[1], ("True consistent", "True pending"))
        self.assertRegex(lines[2], r"^[1-9][0-9]*$")


if __name__ == "__main__":
    unittest.main()
