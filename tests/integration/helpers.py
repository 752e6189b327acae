"""Small helpers shared by the integration's tests."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from homeassistant.core import HomeAssistant

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin.fixtures import Webhook, new_id, strip_prefix


async def create_link(
    hass: HomeAssistant, bay: str = "bay-1", plan: str | None = None
) -> dict[str, Any]:
    """Create a payment link through the action, as an automation would."""
    data = {"bay": bay} | ({"plan": plan} if plan else {})
    response = await hass.services.async_call(
        DOMAIN, "create_payment_link", data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


async def export_sessions(hass: HomeAssistant) -> list[dict[str, str]]:
    """The ledger's sessions, read through the export action."""
    response = await hass.services.async_call(
        DOMAIN, "export_sessions", {}, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return list(csv.DictReader(io.StringIO(str(response["csv"]))))


def altered(webhook: Webhook, change: dict[str, Any]) -> Webhook:
    """A new delivery (new event id) of ``webhook`` with the payment's fields changed."""
    payload = webhook.payload
    payload["payload"]["payment"]["entity"].update(change)
    return Webhook(webhook.event, strip_prefix(new_id("evt")), json.dumps(payload).encode())
