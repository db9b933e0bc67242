"""Local processes started by the e2e fixtures: free ports, logs, readiness waits, cleanup by process id."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests import helm as helm_tools

BIN = helm_tools.BIN
HOST = "127.0.0.1"


def binary(name: str, hint: str = "scripts/bootstrap.sh") -> str:
    """A pinned binary from $LLM_STACK_CACHE/bin, or a RuntimeError naming what installs it."""
    path = BIN / name
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{name} not found at {path}; run {hint}")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@dataclass
class Procs:
    """Starts processes in their own session and stops exactly those (by pid) on close()."""

    logdir: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> Proc:
        self.logdir.mkdir(parents=True, exist_ok=True)
        log = self.logdir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                list(args), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )
        p = Proc(name, popen, log)
        self.procs.append(p)
        return p

    def stop(self, p: Proc, grace: float = 5) -> None:
        if p.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.popen.pid, signal.SIGTERM)
            try:
                p.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.popen.pid, signal.SIGKILL)
                p.popen.wait(5)
        with contextlib.suppress(ValueError):
            self.procs.remove(p)

    def close(self) -> None:
        for p in list(reversed(self.procs)):
            self.stop(p)

    def check_alive(self) -> None:
        dead = [p for p in self.procs if not p.alive()]
        if dead:
            raise RuntimeError("; ".join(f"{p.name} exited ({p.popen.returncode}):\n{p.tail()}" for p in dead))
