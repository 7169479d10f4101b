"""Runs a real memcell server on the embedded default for the tests.

The binary is MEMCELL_BIN, or built from the repository with ``go build``.
Nothing here skips: a missing Go toolchain or a server that does not start
fails the run.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(CLIENT_DIR))

if CLIENT_DIR not in sys.path:
    sys.path.insert(0, CLIENT_DIR)

_built: Optional[str] = None
_tmp = tempfile.TemporaryDirectory(prefix="memcell-pytest-")


def binary() -> str:
    """MEMCELL_BIN, or a memcell built once from the repository."""
    global _built
    env_bin = os.environ.get("MEMCELL_BIN")
    if env_bin:
        if not os.access(env_bin, os.X_OK):
            raise RuntimeError(f"MEMCELL_BIN={env_bin} is not an executable")
        return env_bin
    if _built is None:
        out = os.path.join(_tmp.name, "memcell")
        subprocess.run(["go", "build", "-o", out, "./cmd/memcell"], cwd=REPO_ROOT, check=True)
        _built = out
    return _built


class Server:
    """One ``memcell serve`` process with its own data directory."""

    def __init__(self, env: Optional[Dict[str, str]] = None, args: Sequence[str] = ()) -> None:
        self.data_dir = tempfile.mkdtemp(dir=_tmp.name, prefix="data-")
        full_env = dict(os.environ)
        full_env.pop("MEMCELL_API_TOKEN", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [binary(), "serve", "--data-dir", self.data_dir, "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            text=True,
        )
        self.stdout: List[str] = []
        self.stderr: List[str] = []
        urls: "queue.Queue[str]" = queue.Queue()

        def read_stdout() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.stdout.append(line)
                text = line.strip()
                if text.startswith("api:"):
                    urls.put(text[len("api:") :].strip())

        def read_stderr() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.stderr.append(line)

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()
        try:
            self.url = urls.get(timeout=60)
        except queue.Empty:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("memcell serve printed no api line:\n" + "".join(self.stderr[-20:]))

    def stop(self) -> int:
        """Sends SIGTERM and waits; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("memcell serve did not stop within 30 s of SIGTERM")
        return self.proc.returncode


def self_signed_cert() -> Tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl."""
    out = tempfile.mkdtemp(dir=_tmp.name, prefix="tls-")
    cert, key = os.path.join(out, "cert.pem"), os.path.join(out, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=memcell test",
         "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return cert, key
