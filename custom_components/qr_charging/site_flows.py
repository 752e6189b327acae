"""The site subentry flow (issue #25): a site's name, time zone, opening hours and load cap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import SubentryFlowResult
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector

from .catalog_errors import CatalogError
from .const import CONF_NAME, CONF_SITE_ID, SUBENTRY_SITE
from .flow_fields import TEXT, flatten
from .hub import bays_of
from .sites import WEEKDAYS, make_site, site_to_data, time_zones
from .subentry_flows import _CatalogSubentryFlow

SECTION_HOURS = "opening_hours"
SECTION_LOAD = "load_cap"
CONF_ADDRESS = "address"
CONF_TIME_ZONE = "time_zone"
CONF_CLOSED_DATES = "closed_dates"
CONF_SELL_PAST_CLOSING = "sell_past_closing"
CONF_LOAD_CAP_KW = "load_cap_kw"
# A new site's hours as the add form shows them: open around the clock.
_ALL_DAY_TEXT = "00:00-24:00"
_KW = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=0, step="any", mode=selector.NumberSelectorMode.BOX, unit_of_measurement="kW"
    )
)


def _load_cap_w(kw: Any) -> int | None:
    """The cap entered in kW as whole watts; left empty: no cap."""
    if kw is None or kw == "":
        return None
    try:
        return round(float(kw) * 1000)
    except (TypeError, ValueError, OverflowError) as err:
        raise CatalogError(CONF_LOAD_CAP_KW, "invalid_load_cap") from err


class SiteSubentryFlow(_CatalogSubentryFlow):
    """A site: id, name, address, time zone; its opening hours and load cap in sections."""

    subentry_type = SUBENTRY_SITE
    id_field = CONF_SITE_ID

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add one (the time zone names are read off the event loop first)."""
        await self.hass.async_add_executor_job(time_zones)
        return await self._async_add("user", user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit one; its id stays (its bays name it)."""
        await self.hass.async_add_executor_job(time_zones)
        return await self._async_edit("reconfigure", user_input)

    def _schema(self, defaults: Mapping[str, Any], *, editing: bool) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {} if editing else {vol.Required(CONF_SITE_ID): TEXT}
        fields[vol.Required(CONF_NAME)] = TEXT
        fields[vol.Optional(CONF_ADDRESS)] = TEXT
        # Any text is taken (and checked by ``make_site``), so a wrong name gets a field error.
        fields[vol.Optional(CONF_TIME_ZONE)] = selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=list(time_zones()),
                custom_value=True,
                mode=selector.SelectSelectorMode.DROPDOWN,
            )
        )
        hours: dict[vol.Marker, Any] = {vol.Optional(day): TEXT for day in WEEKDAYS}
        hours[vol.Optional(CONF_CLOSED_DATES)] = TEXT
        hours[vol.Optional(CONF_SELL_PAST_CLOSING, default=False)] = selector.BooleanSelector()
        fields[vol.Required(SECTION_HOURS)] = section(vol.Schema(hours), {"collapsed": False})
        fields[vol.Optional(SECTION_LOAD)] = section(
            vol.Schema({vol.Optional(CONF_LOAD_CAP_KW): _KW}), {"collapsed": True}
        )
        return vol.Schema(fields)

    def _form(
        self, step_id: str, values: Mapping[str, Any], errors: dict[str, str], *, editing: bool
    ) -> SubentryFlowResult:
        if not values:  # a new site's form: open around the clock
            values = {SECTION_HOURS: dict.fromkeys(WEEKDAYS, _ALL_DAY_TEXT)}
        return super()._form(step_id, values, errors, editing=editing)

    def _defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        hours = {day: text for day, text in data["hours"].items() if text}
        if data["closed_dates"]:
            hours[CONF_CLOSED_DATES] = ", ".join(data["closed_dates"])
        hours[CONF_SELL_PAST_CLOSING] = data["sell_past_closing"]
        values: dict[str, Any] = {CONF_NAME: data[CONF_NAME], SECTION_HOURS: hours}
        if data["address"]:
            values[CONF_ADDRESS] = data["address"]
        if data["time_zone"]:
            values[CONF_TIME_ZONE] = data["time_zone"]
        cap = data["load_cap_w"]
        values[SECTION_LOAD] = {} if cap is None else {CONF_LOAD_CAP_KW: cap / 1000}
        return values

    def _entered(self, user_input: dict[str, Any]) -> dict[str, Any]:
        return flatten(flatten(user_input, SECTION_HOURS), SECTION_LOAD)

    def _build(self, entered: dict[str, Any], item_id: str) -> dict[str, Any]:
        """A weekday the form sends empty (or not at all) is a closed day."""
        site = make_site(
            item_id,
            str(entered[CONF_NAME]),
            address=str(entered.get(CONF_ADDRESS) or ""),
            time_zone=entered.get(CONF_TIME_ZONE) or None,
            hours={day: str(entered.get(day) or "") for day in WEEKDAYS},
            closed_dates=str(entered.get(CONF_CLOSED_DATES) or ""),
            load_cap_w=_load_cap_w(entered.get(CONF_LOAD_CAP_KW)),
            sell_past_closing=bool(entered.get(CONF_SELL_PAST_CLOSING)),
            rated_w=[
                bay.rated_w for bay in bays_of(self._get_entry()).values() if bay.site_id == item_id
            ],
        )
        return site_to_data(site)
