"""The bay form's fields beside its plans: its relay, how customers pay, its site and power."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector

from .catalog import (
    DEFAULT_HOLD_MINUTES,
    DEFAULT_RATED_W,
    MAX_HOLD_MINUTES,
    MAX_RATED_W,
    MIN_HOLD_MINUTES,
    MIN_RATED_W,
)
from .catalog_errors import CatalogError
from .const import (
    CONF_AGENT_BAY,
    CONF_DYNAMIC_QR,
    CONF_HOLD_MINUTES,
    CONF_NODE,
    CONF_PREFIX,
    CONF_QR_VALIDITY,
    CONF_RATED_W,
    CONF_SITE_ID,
    CONF_STATIC_QR,
    CONF_SWITCH_ENTITY,
)
from .flow_fields import TEXT, whole_number
from .relays import DEFAULT_PREFIX, DRIVER_SWITCH, MqttRelay, Relay, SwitchRelay
from .sites import DEFAULT_SITE_ID, Site, check_bay_power
from .totp import DEFAULT_VALIDITY_S, MAX_VALIDITY_S, MIN_VALIDITY_S

_VALIDITY = whole_number(MIN_VALIDITY_S, MAX_VALIDITY_S, "s")
_HOLD = whole_number(MIN_HOLD_MINUTES, MAX_HOLD_MINUTES, "min")
# The bay form's collapsed section: how customers pay (QR codes, the hold while paying).
SECTION_QR = "qr_options"


def relay_fields(kind: str) -> dict[vol.Marker, Any]:
    """The fields of one kind of relay (the bay form shows only the kind chosen)."""
    if kind == DRIVER_SWITCH:
        return {
            vol.Required(CONF_SWITCH_ENTITY): selector.EntitySelector(
                selector.EntitySelectorConfig(domain="switch")
            )
        }
    return {
        vol.Required(CONF_NODE): TEXT,
        vol.Optional(CONF_AGENT_BAY): TEXT,
        vol.Required(CONF_PREFIX, default=DEFAULT_PREFIX): TEXT,
    }


def relay_of(kind: str, entered: Mapping[str, Any]) -> Relay:
    """The relay the form describes (checked by ``make_bay``)."""
    if kind == DRIVER_SWITCH:
        return SwitchRelay(entity_id=entered.get(CONF_SWITCH_ENTITY) or "")
    return MqttRelay(
        node=entered.get(CONF_NODE) or "",
        agent_bay=entered.get(CONF_AGENT_BAY) or None,
        prefix=entered.get(CONF_PREFIX) or DEFAULT_PREFIX,
    )


def qr_section() -> section:
    """How customers pay: static and dynamic QR codes, the hold while paying; collapsed."""
    return section(
        vol.Schema(
            {
                vol.Optional(CONF_STATIC_QR, default=False): selector.BooleanSelector(),
                vol.Required(CONF_HOLD_MINUTES, default=DEFAULT_HOLD_MINUTES): _HOLD,
                vol.Optional(CONF_DYNAMIC_QR, default=False): selector.BooleanSelector(),
                vol.Required(CONF_QR_VALIDITY, default=DEFAULT_VALIDITY_S): _VALIDITY,
            }
        ),
        {"collapsed": True},
    )


def site_fields(sites: Mapping[str, Site]) -> dict[vol.Marker, Any]:
    """The bay's site (a select of the account's sites, the first by default), its power."""
    options = [selector.SelectOptionDict(value=s.site_id, label=s.name) for s in sites.values()]
    return {
        vol.Required(CONF_SITE_ID, default=next(iter(sites), DEFAULT_SITE_ID)): (
            selector.SelectSelector(selector.SelectSelectorConfig(options=options))
        ),
        vol.Required(CONF_RATED_W, default=DEFAULT_RATED_W): whole_number(
            MIN_RATED_W, MAX_RATED_W, "W"
        ),
    }


def site_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    """The edit form's site and power for a stored bay (not stored when they are defaults)."""
    return {
        CONF_SITE_ID: data.get(CONF_SITE_ID, DEFAULT_SITE_ID),
        CONF_RATED_W: data.get(CONF_RATED_W, DEFAULT_RATED_W),
    }


def bay_site(sites: Mapping[str, Site], entered: Mapping[str, Any]) -> dict[str, Any]:
    """``make_bay``'s ``site_id`` and ``rated_w``: a known site whose cap one bay fits under."""
    site = sites.get(str(entered.get(CONF_SITE_ID) or next(iter(sites), DEFAULT_SITE_ID)))
    if site is None:
        raise CatalogError(CONF_SITE_ID, "unknown_site")
    watts = float(entered.get(CONF_RATED_W, DEFAULT_RATED_W))
    if watts != int(watts):
        raise CatalogError(CONF_RATED_W, "invalid_rated_power")
    check_bay_power(site, int(watts))
    return {"site_id": site.site_id, "rated_w": int(watts)}
