"""The demo's processes: each in its own process group, with its own log file."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PRCTL: Callable[..., int] | None
try:  # looked up here, not in the child: between fork and exec is no place for dlsym
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: the child gets SIGTERM if the demo itself dies (even by SIGKILL)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` and we may bind it."""
    with socket.socket() as sock:
        # As the servers do: a port whose last connections wait in TIME_WAIT is free to them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pick_port(previous: int | None, preferred: int, taken: set[int]) -> int:
    """The port used last time when free, else the usual one when free, else any free one."""
    for candidate in (previous, preferred):
        if candidate and candidate not in taken and port_free(candidate):
            return candidate
    while (port := free_port()) in taken:
        pass
    return port


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Service:
    """One process of the demo: started, watched, stopped (its whole process group)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stop_timeout: float = 20.0,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.env = env
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.stopping = False
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def start(self) -> None:
        """Start it; its output is appended to its log file."""
        self.stopping = False
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {self.argv}\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops us in order
                preexec_fn=_die_with_parent,
            )
        self.started_at = time.monotonic()

    async def wait(self) -> int:
        """Wait for it to end; its exit code."""
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self) -> int | None:
        """SIGTERM to its process group; SIGKILL after ``stop_timeout``. Its exit code."""
        self.stopping = True
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        # Anything it left behind in its group (none expected) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def tail(self, lines: int = 25) -> str:
        """The last lines of its log, from its latest start."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        latest = text.rsplit("\n===== ", 1)[-1]
        return "\n".join(latest.rstrip("\n").splitlines()[1:][-lines:]) or "(nothing logged)"


async def wait_for(
    what: str,
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    within: float,
    *,
    interval: float = 0.1,
) -> float:
    """Poll ``condition`` until it holds; the seconds it took. TimeoutError names ``what``."""
    start = time.monotonic()
    deadline = start + within
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within:g} s")
        await asyncio.sleep(interval)
