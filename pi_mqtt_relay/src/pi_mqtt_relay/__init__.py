"""Timed relay agent for qr_charging bays.

It switches one GPIO relay per charging bay on MQTT commands and keeps every deadline on
its own clock, so a bay goes off on time even without Home Assistant or the broker.
"""

__version__ = "1.0.0"
