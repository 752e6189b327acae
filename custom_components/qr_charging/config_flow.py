"""Config flow of qr_charging."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult

from .const import CONF_KEY_ID, CONF_KEY_SECRET, CONF_WEBHOOK_SECRET, DOMAIN


class QrChargingConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a Razorpay account."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the Razorpay keys."""
        if user_input is not None:
            await self.async_set_unique_id(user_input[CONF_KEY_ID])
            self._abort_if_unique_id_configured()
            return self.async_create_entry(title=user_input[CONF_KEY_ID], data=user_input)
        schema = vol.Schema(
            {
                vol.Required(CONF_KEY_ID): str,
                vol.Required(CONF_KEY_SECRET): str,
                vol.Required(CONF_WEBHOOK_SECRET): str,
            }
        )
        return self.async_show_form(step_id="user", data_schema=schema)
