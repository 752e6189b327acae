"""Timed relay agent for qr_charging bays.

It switches one GPIO relay per charging bay on MQTT commands and keeps every deadline on
its own clock, so a bay goes off on time even without Home Assistant or the broker.
"""

from importlib.metadata import PackageNotFoundError, version

# One source of truth, pyproject.toml: the agent announces this to Home Assistant.
try:
    __version__ = version("pi-mqtt-relay")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
