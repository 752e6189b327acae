"""``scripts/demo``: the whole system on this machine, on 127.0.0.1 only.

Starts, each as a process of its own with a log in ``<demo dir>/logs/``: an MQTT broker
(Mosquitto, or the embedded amqtt when Mosquitto is missing), the Razorpay stand-in as a
server, ``pi-mqtt-relay --mock-gpio`` with two bays, and Home Assistant with its frontend.
Home Assistant is set up through its own HTTP APIs, as a person would in its UI: onboarding
with a demo owner, the MQTT broker, the Razorpay account (pointing at the stand-in), two fixed
plans and a per-minute one, the agent's bays through MQTT discovery (Bay 2 then with a dynamic
QR code on its display), and a dashboard whose QR codes open the bays' public pages. A second
start reuses all of it.

``--check`` runs the same stack, goes the customer's way once (the QR code, the bay page, Pay,
the checkout, the session page, the bay off at the end, and a refund), prints what it saw and
exits 0 or 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp

from .check import Demo
from .homeassistant import HomeAssistant, HomeAssistantError
from .settings import (
    ROOT,
    CheckFailed,
    DemoError,
    say,
)


def _stop_on_signals(loop: asyncio.AbstractEventLoop) -> asyncio.Future[signal.Signals]:
    """A future that Ctrl-C (SIGINT) or SIGTERM completes."""
    stop_requested: asyncio.Future[signal.Signals] = loop.create_future()

    def request_stop(sig: signal.Signals) -> None:
        if not stop_requested.done():
            stop_requested.set_result(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop, sig)
    return stop_requested


def _outcome(
    demo: Demo,
    job: asyncio.Task[int],
    stop_requested: asyncio.Future[signal.Signals],
    *,
    check: bool,
) -> int:
    """The exit code, after saying what ended the demo."""
    assert demo.crashed is not None
    try:
        if job.done():
            return job.result()
        if demo.crashed.done():
            service, exit_code = demo.crashed.result()
            say(
                f"\n!!! {service.name} stopped unexpectedly (exit code {exit_code}); "
                f"the last lines of {service.log}:\n{service.tail()}\n"
            )
            return 1
        say(f"\n==> {stop_requested.result().name} received")
    except CheckFailed as err:
        say(f"==> check FAILED: {err}")
        return 1
    except (DemoError, HomeAssistantError, TimeoutError, aiohttp.ClientError) as err:
        say(f"!!! {type(err).__name__}: {err}")
        for service in demo.services.values():
            if service.proc is not None:
                say(f"--- the last lines of {service.log}:\n{service.tail(15)}")
        return 1
    return 1 if check else 0


async def _run(args: argparse.Namespace, folder: Path) -> int:
    demo = Demo(folder, broker=args.broker)
    demo.prepare()
    demo.choose_ports()
    demo.write_files()
    demo.repoint_entries()
    loop = asyncio.get_running_loop()
    stop_requested = _stop_on_signals(loop)
    demo.crashed = loop.create_future()
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        demo.session = session
        demo.ha = HomeAssistant(session, demo.ports["homeassistant"])

        async def work() -> int:
            await demo.start_stack()
            await demo.setup_home_assistant()  # or check that it still is
            say(f"==> up in {time.monotonic() - started:.1f} s")
            if args.check:
                check_start = time.monotonic()
                await demo.check()
                say(f"==> check passed in {time.monotonic() - check_start:.1f} s")
                return 0
            demo.summary()
            await asyncio.Event().wait()  # until Ctrl-C, SIGTERM or a crash
            return 0

        job = asyncio.create_task(work())
        try:
            ends: set[asyncio.Future[Any]] = {job, stop_requested, demo.crashed}
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            code = _outcome(demo, job, stop_requested, check=args.check)
        finally:
            if not job.done():
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await job
            await demo.stop_all()
    return code


def main(argv: list[str] | None = None) -> int:
    """Command line of scripts/demo (after scripts/setup)."""
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--check", action="store_true", help="run a customer's journey once; exit 0 or 1"
    )
    parser.add_argument(
        "--dir", default=str(ROOT / ".demo"), help="the demo's folder (default: .demo)"
    )
    parser.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "amqtt"),
        default="auto",
        help="MQTT broker: Mosquitto when installed (auto), or the embedded amqtt",
    )
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args, Path(args.dir).resolve()))
    except DemoError as err:
        say(f"scripts/demo: {err}")
        return 1
