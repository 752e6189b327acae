"""Builders of the integration's tests that need HA: the account's data, a plug, a webhook POST.

Fixtures stay in ``conftest.py``; plain data (plans, bays, ids) is in ``const.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientResponse
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from custom_components.qr_charging.const import (
    CONF_API_BASE_URL,
    CONF_CLOUDHOOK,
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_PAGES_SECRET,
    CONF_PAGES_WEBHOOK_ID,
    CONF_WEBHOOK_SECRET,
)
from devtools.razorpay_standin import RazorpayStandin

from .const import PAGES_ID, PAGES_SECRET, PLUG, WEBHOOK_ID, WEBHOOK_SECRET

# What the ``post_webhook`` fixture gives: POST a delivery (or a body and headers) to the webhook.
PostWebhook = Callable[..., Awaitable[ClientResponse]]


def entry_data(standin: RazorpayStandin) -> dict[str, Any]:
    """Config entry data pointing at the stand-in."""
    return {
        CONF_KEY_ID: standin.key_id,
        CONF_KEY_SECRET: standin.key_secret,
        CONF_WEBHOOK_SECRET: WEBHOOK_SECRET,
        CONF_API_BASE_URL: standin.base_url,
        CONF_WEBHOOK_ID: WEBHOOK_ID,
        CONF_CLOUDHOOK: False,
        CONF_PAGES_WEBHOOK_ID: PAGES_ID,
        CONF_PAGES_SECRET: PAGES_SECRET,
    }


async def setup_plug(hass: HomeAssistant) -> None:
    """A real HA switch (template over an input_boolean), as a smart plug would be."""
    assert await async_setup_component(hass, "input_boolean", {"input_boolean": {"plug": {}}})
    toggle = {"target": {"entity_id": "input_boolean.plug"}}
    assert await async_setup_component(
        hass,
        "template",
        {
            "template": [
                {
                    "switch": [
                        {
                            "name": "Bay 1 plug",
                            "state": "{{ is_state('input_boolean.plug', 'on') }}",
                            "turn_on": {"action": "input_boolean.turn_on", **toggle},
                            "turn_off": {"action": "input_boolean.turn_off", **toggle},
                        }
                    ]
                }
            ]
        },
    )
    await hass.async_block_till_done()
    assert hass.states.get(PLUG) is not None
