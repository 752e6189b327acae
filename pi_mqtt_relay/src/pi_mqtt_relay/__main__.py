"""Command line entry point: ``pi-mqtt-relay --config agent.yaml``.

Exit codes: 0 after a clean stop (SIGTERM, SIGINT) or a valid ``--check-config``;
2 for a configuration error (reported before any pin is touched); 1 for any other error,
after every relay has been switched off.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from . import __version__
from .config import ConfigError, load_config

_LOGGER = logging.getLogger("pi_mqtt_relay")
EXIT_ERROR = 1
EXIT_CONFIG = 2


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pi-mqtt-relay",
        description="Timed relay agent of qr_charging: MQTT commands in, GPIO relays out.",
    )
    parser.add_argument("--config", required=True, help="path of the agent.yaml file")
    parser.add_argument(
        "--mock-gpio",
        action="store_true",
        help="use gpiozero's MockFactory instead of real pins (development, demo, tests)",
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate the configuration and exit"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def _pin_factory(mock: bool) -> Any:
    """MockFactory for ``--mock-gpio``; None lets gpiozero pick (lgpio on a Pi 5)."""
    if not mock:
        return None
    from gpiozero import Device  # noqa: PLC0415 - only needed for the mock pins
    from gpiozero.pins.mock import MockFactory  # noqa: PLC0415

    # Also made the default factory, so in-process callers can read the mock pins.
    Device.pin_factory = MockFactory()
    return Device.pin_factory


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent until SIGTERM or SIGINT; return the exit code."""
    args = _arguments(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"pi-mqtt-relay: configuration error in {args.config}:\n{err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check_config:
        print(f"{args.config}: configuration is valid ({len(config.bays)} bays)")
        return 0

    from .agent import Agent  # noqa: PLC0415 - keeps --check-config free of GPIO imports

    stop = threading.Event()

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        _LOGGER.info("received %s: switching every relay off", signal.Signals(signum).name)
        stop.set()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous: dict[signal.Signals, Any] = {}
    if in_main_thread:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _request_stop)
    try:
        agent = Agent(config, pin_factory=_pin_factory(args.mock_gpio))
        agent.run(stop)
    except Exception as err:
        _LOGGER.critical("stopping on error: %s", err, exc_info=True)
        return EXIT_ERROR
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _LOGGER.info("stopped; every relay is off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
