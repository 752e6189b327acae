"""How long each callback held an asyncio event loop, and whose code it was.

Every callback an asyncio loop runs (a task's step, a timer, a socket reader) goes through
``asyncio.events.Handle._run``; the probe wraps it and times each call with
``time.perf_counter``. The longest calls are kept with a description; a call counts as *ours*
when our package (``marker``, e.g. ``qr_charging``) is in it: in the callback's source, or in
the coroutine chain of the task it steps, read before and after the step (a step starts where
the task was suspended and ends where it suspends next).

A plain callback (not a task's step) shows only itself: Home Assistant's MQTT reader, say,
calls our message handlers inside its own callback. For those, a sampler thread looks at the
loop thread's stack once a callback has run for ``sample_after_s`` (it gets the GIL within
Python's switch interval, 5 ms, so it sees the long ones) and the stack joins the description.

The cyclic garbage collector's passes are timed too (``gc.callbacks``): a full collection of
Home Assistant's heap can stop the loop for tens of milliseconds inside whatever callback
happened to allocate; a callback's time less its collections is what its own code took, and
that is what ``max_ours_ms`` counts. A callback is also timed in CPU time (``time.thread_time``):
on a machine shared with other work, a thread can be descheduled in the middle of a callback,
which makes it long by the wall clock without its code doing anything; ``max_ours_ms`` and
``max_own_ms`` count CPU time less collections, ``max_ms`` the wall clock.

Stdlib only: the benchmark uses it in-process, and it is copied into the benchmark's probe
component inside a Home Assistant process. Reading the coroutine chains costs about a
microsecond per task step, the sampler a wake-up every 2 ms; ``chains=False`` leaves both out
(attribution then rests on the callback alone).
"""

from __future__ import annotations

import asyncio
import asyncio.events
import gc
import sys
import threading
import time
from asyncio import format_helpers
from collections.abc import Callable
from typing import Any

_MAX_DEPTH = 40


def _task_of(handle: asyncio.Handle) -> asyncio.Task[Any] | None:
    owner = getattr(handle._callback, "__self__", None)
    return owner if isinstance(owner, asyncio.Task) else None


def _chain(task: asyncio.Task[Any]) -> list[Any]:
    """The code objects of the task's coroutine chain, outermost first."""
    codes: list[Any] = []
    coro: Any = task.get_coro()
    while coro is not None and len(codes) < _MAX_DEPTH:
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is None:
            break
        codes.append(code)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return codes


def _label(code: Any) -> str:
    """``qualname (package/module.py)`` of a code object."""
    return f"{code.co_qualname} ({'/'.join(code.co_filename.rsplit('/', 2)[-2:])})"


def _stack(frame: Any) -> tuple[list[str], list[str]]:
    """Labels of a stack's frames, innermost first, and their file names."""
    names: list[str] = []
    files: list[str] = []
    while frame is not None and len(names) < _MAX_DEPTH * 2:
        names.append(_label(frame.f_code))
        files.append(frame.f_code.co_filename)
        frame = frame.f_back
    return names, files


def _describe(handle: asyncio.Handle, before: list[Any] | None, marker: str) -> tuple[str, bool]:
    """What a callback was, and whether ``marker`` is in its code."""
    task = _task_of(handle)
    if task is None:
        what = format_helpers._format_callback_source(handle._callback, handle._args)
        if what.startswith("None("):
            what = repr(handle._callback)
        return what, marker in what
    codes = list(before or [])
    for code in _chain(task):
        if code not in codes:
            codes.append(code)
    names = " > ".join(_label(c) for c in codes)
    ours = any(marker in c.co_filename for c in codes)
    return f"task {task.get_name()}: {names or task.get_coro()!r}", ours


class BlockProbe:
    """Times every callback of the loops in this process while installed."""

    def __init__(
        self,
        marker: str = "qr_charging",
        *,
        record_over_s: float = 0.001,
        keep: int = 12,
        chains: bool = True,
    ) -> None:
        self.marker = marker
        self.record_over_s = record_over_s
        self.keep = keep
        self.chains = chains
        self._original: Callable[[asyncio.Handle], None] | None = None
        # The callback running now (its start) and the loop's thread, for the sampler.
        self._running_since = 0.0
        self._loop_thread = 0
        self._sample: tuple[float, tuple[list[str], list[str]]] | None = None
        # Collections in the loop's thread: when the one running began, and time in the callback.
        self._gc_started = 0.0
        self._gc_in_callback = 0.0
        self._stop = threading.Event()
        self.sample_after_s = 0.004
        self.reset()

    def reset(self) -> None:
        """Forget what was measured so far."""
        self.callbacks = 0
        self.busy_s = 0.0
        self.max_s = 0.0
        self.max_ours_s = 0.0
        self.over_1ms = 0
        self.over_5ms = 0
        self.ours_over_5ms = 0
        self.gc_max_s = 0.0
        self.gc_s = 0.0
        self.max_own_s = 0.0
        self.top: list[tuple[float, float, bool, str]] = []

    def install(self) -> None:
        """Wrap ``Handle._run`` (once)."""
        if self._original is not None:
            return
        original = asyncio.events.Handle._run
        self._original = original
        probe = self
        clock = time.perf_counter
        cpu_clock = time.thread_time
        get_ident = threading.get_ident

        def _run(handle: asyncio.Handle) -> None:
            if not probe._loop_thread:
                # The first loop that runs a callback is the one measured.
                probe._loop_thread = get_ident()
            elif probe._loop_thread != get_ident():
                original(handle)
                return
            before = None
            if probe.chains and (task := _task_of(handle)) is not None:
                before = _chain(task)
            probe._gc_in_callback = 0.0
            cpu_start = cpu_clock()
            start = clock()
            probe._running_since = start
            try:
                original(handle)
            finally:
                probe._running_since = 0.0
            spent = clock() - start
            collected = probe._gc_in_callback
            own = max(cpu_clock() - cpu_start - collected, 0.0)
            probe.max_own_s = max(probe.max_own_s, own)
            probe.callbacks += 1
            probe.busy_s += spent
            probe.max_s = max(probe.max_s, spent)
            if spent >= probe.record_over_s:
                probe._record(
                    handle, spent, collected=collected, own=own, before=before, start=start
                )

        asyncio.events.Handle._run = _run  # type: ignore[method-assign]
        gc.callbacks.append(self._gc)
        if self.chains:
            self._stop.clear()
            threading.Thread(target=self._sampler, name="loop-probe", daemon=True).start()

    def _sampler(self) -> None:
        """Take the loop thread's stack once per callback that runs long."""
        clock = time.perf_counter
        while not self._stop.wait(0.002):
            since = self._running_since
            if not since or clock() - since < self.sample_after_s:
                continue
            if self._sample is not None and self._sample[0] == since:
                continue
            if not self._loop_thread:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            if frame is not None and self._running_since == since:
                self._sample = (since, _stack(frame))

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        """Time the collector's passes in the loop's thread."""
        if threading.get_ident() != self._loop_thread:
            return
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
        elif self._gc_started:
            took = now - self._gc_started
            self._gc_started = 0.0
            self._gc_in_callback += took
            self.gc_s += took
            self.gc_max_s = max(self.gc_max_s, took)

    def uninstall(self) -> None:
        """Put ``Handle._run`` back."""
        self._stop.set()
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
            self._original = None

    def _record(
        self,
        handle: asyncio.Handle,
        spent: float,
        *,
        collected: float,
        own: float,
        before: list[Any] | None,
        start: float,
    ) -> None:
        what, ours = _describe(handle, before, self.marker)
        sample = self._sample
        if sample is not None and sample[0] == start:
            names, files = sample[1]
            what += f" | stack after {self.sample_after_s * 1000:.0f}+ ms: " + " < ".join(names)
            ours = ours or any(self.marker in f for f in files)
        self.over_1ms += spent >= 0.001
        self.over_5ms += spent >= 0.005
        if ours:
            self.max_ours_s = max(self.max_ours_s, own)
            self.ours_over_5ms += own >= 0.005
        self.top.append((spent, collected, own, ours, what[:2000]))
        self.top.sort(key=lambda item: -item[0])
        del self.top[self.keep :]

    def snapshot(self) -> dict[str, Any]:
        """What was measured since the last reset (times in ms).

        ``max_ours_ms`` counts only callbacks of at least ``record_over_s`` by the wall clock
        (0: none that long), in CPU time without the garbage collector's passes inside them
        (``gc_max_ms``: the longest pass); ``max_own_ms`` the same for any callback.
        """
        return {
            "callbacks": self.callbacks,
            "busy_ms": round(self.busy_s * 1000, 3),
            "max_ms": round(self.max_s * 1000, 3),
            "max_ours_ms": round(self.max_ours_s * 1000, 3),
            "over_1ms": self.over_1ms,
            "over_5ms": self.over_5ms,
            "ours_over_5ms": self.ours_over_5ms,
            "max_own_ms": round(self.max_own_s * 1000, 3),
            "gc_ms": round(self.gc_s * 1000, 3),
            "gc_max_ms": round(self.gc_max_s * 1000, 3),
            "top": [
                {
                    "ms": round(spent * 1000, 3),
                    "cpu_ms": round(own * 1000, 3),
                    "gc_ms": round(collected * 1000, 3),
                    "ours": ours,
                    "what": what,
                }
                for spent, collected, own, ours, what in self.top
            ],
        }
