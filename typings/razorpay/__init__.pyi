"""Razorpay's Python SDK: the parts qr_charging uses."""

from .client import Client as Client

__all__ = ["Client"]
