"""Constants and config subentries of the integration's tests (plain data, no HA import).

The unit tests build their bays from these too, so this module imports nothing from HA.
"""

from __future__ import annotations

from typing import Any

from custom_components.qr_charging.const import (
    CONF_BAY_ID,
    CONF_CODE,
    CONF_MINUTES,
    CONF_NAME,
    CONF_PLANS,
    CONF_PRICE_PAISE,
    SUBENTRY_BAY,
    SUBENTRY_PLAN,
)

ENTRY_ID = "01JQRCHARGINGTESTENTRY0001"  # the ``config_entry`` fixture's
WEBHOOK_ID = "razorpay-test-hook"
PAGES_ID = "pages-test-hook"
PAGES_SECRET = "pages-test-secret-0123456789"
WEBHOOK_SECRET = "whsec-test-secret"
PLAN_PRICE = 2000  # paise: ₹20 for 30 minutes
PLUG = "switch.bay_1_plug"


def plan_subentry(code: str, minutes: int, price_paise: int) -> dict[str, Any]:
    """A plan as its config subentry holds it."""
    name = f"{minutes} minutes"
    return {
        "data": {
            CONF_CODE: code,
            CONF_NAME: name,
            CONF_MINUTES: minutes,
            CONF_PRICE_PAISE: price_paise,
        },
        "subentry_type": SUBENTRY_PLAN,
        "title": name,
        "unique_id": code,
    }


PLAN_SUBENTRY = plan_subentry("p30", 30, PLAN_PRICE)
# A per-minute plan: ₹0.50 a minute, 10 to 120 minutes.
RATE_PLAN_SUBENTRY = {
    "data": {
        CONF_CODE: "pm",
        CONF_NAME: "Per minute",
        "kind": "rate",
        "rate_paise": 50,
        "min_minutes": 10,
        "max_minutes": 120,
    },
    "subentry_type": "rate_plan",
    "title": "Per minute",
    "unique_id": "pm",
}
# What bay-1 offers where a test needs both kinds of plan: the fixed half hour and ₹0.50 a
# minute for 10 to 120 minutes.
FIXED_AND_PER_MINUTE = [PLAN_SUBENTRY, RATE_PLAN_SUBENTRY]
BAY_SUBENTRY = {
    "data": {
        CONF_BAY_ID: "bay-1",
        CONF_NAME: "Bay 1",
        CONF_PLANS: ["p30"],
        "driver": "switch",
        "node": None,
        "agent_bay": None,
        "prefix": "qr_charging",
        "switch_entity": "switch.bay_1_plug",
        "default_minutes": 30,
        "max_minutes": 240,
    },
    "subentry_type": SUBENTRY_BAY,
    "title": "Bay 1",
    "unique_id": "bay-1",
}


def mqtt_bay(node: str, prefix: str = "qr_charging", bay_id: str = "bay-1") -> dict[str, Any]:
    """``bay_id`` (named like it: ``Bay 2`` for bay-2) on bay-1 of ``node``'s pi-mqtt-relay
    agent under ``prefix``."""
    name = bay_id.replace("bay-", "Bay ")
    mqtt = {"driver": "mqtt", "node": node, "agent_bay": "bay-1", "switch_entity": None}
    data = {**BAY_SUBENTRY["data"], **mqtt, CONF_BAY_ID: bay_id, CONF_NAME: name, "prefix": prefix}
    return {**BAY_SUBENTRY, "data": data, "title": name, "unique_id": bay_id}


def with_plans(bay: dict[str, Any], plans: list[dict[str, Any]]) -> dict[str, Any]:
    """A bay subentry offering these plans."""
    codes = [plan["data"][CONF_CODE] for plan in plans]
    return {**bay, "data": {**bay["data"], CONF_PLANS: codes}}
