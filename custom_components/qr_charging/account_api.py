"""Razorpay calls for one account, from Home Assistant, in the executor.

A rejected key starts the reauth flow wherever the call came from (an action, an entity,
reconciliation).

Errors stay Razorpay's (``razorpay_api``); ``errors.translated`` turns them into Home
Assistant's at the edge, where an action or an entity answers a person.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .const import CONF_API_BASE_URL, CONF_KEY_ID, CONF_KEY_SECRET, DEFAULT_API_BASE_URL
from .razorpay_api import RazorpayApi, RazorpayAuthError


def api_for(data: dict[str, Any] | Any) -> RazorpayApi:
    """A Razorpay client for config entry data (or flow input)."""
    return RazorpayApi(
        data[CONF_KEY_ID],
        data[CONF_KEY_SECRET],
        base_url=data.get(CONF_API_BASE_URL) or DEFAULT_API_BASE_URL,
    )


class AccountApi:
    """The account's Razorpay client, awaited."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.client = api_for(entry.data)

    async def run[**P, T](self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking call of ``client`` in the executor."""
        try:
            return await self.hass.async_add_executor_job(lambda: func(*args, **kwargs))
        except RazorpayAuthError:
            self.entry.async_start_reauth(self.hass)
            raise

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
