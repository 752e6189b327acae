"""Timed relay agent for qr_charging bays."""

__version__ = "0.1.0"
