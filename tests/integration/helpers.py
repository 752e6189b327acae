"""Builders shared by the integration's tests (fixtures are in ``conftest.py``).

Plain data (ids, secrets, plans, bays) is in ``const.py``, which imports nothing from HA.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import ClientResponse
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_fire_time_changed
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.qr_charging.const import (
    CONF_API_BASE_URL,
    CONF_CLOUDHOOK,
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_PAGES_SECRET,
    CONF_PAGES_WEBHOOK_ID,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
)
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.fixtures import Webhook, new_id, strip_prefix

from .const import PAGES_ID, PAGES_SECRET, PLUG, WEBHOOK_ID, WEBHOOK_SECRET

if TYPE_CHECKING:
    from devtools.razorpay_standin import PaidPayment


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


async def setup_plug(hass: HomeAssistant, plugs: int = 1) -> None:
    """Real HA switches (template over an input_boolean), as smart plugs would be.

    ``switch.bay_1_plug`` over ``input_boolean.plug``; with ``plugs=2`` also
    ``switch.bay_2_plug`` over ``input_boolean.plug2``.
    """
    names = ["plug", *(f"plug{n}" for n in range(2, plugs + 1))]
    booleans = {"input_boolean": {name: {} for name in names}}
    assert await async_setup_component(hass, "input_boolean", booleans)
    switches = []
    for number, name in enumerate(names, start=1):
        toggle = {"target": {"entity_id": f"input_boolean.{name}"}}
        switches.append(
            {
                "name": f"Bay {number} plug",
                "state": f"{{{{ is_state('input_boolean.{name}', 'on') }}}}",
                "turn_on": {"action": "input_boolean.turn_on", **toggle},
                "turn_off": {"action": "input_boolean.turn_off", **toggle},
            }
        )
    assert await async_setup_component(hass, "template", {"template": [{"switch": switches}]})
    await hass.async_block_till_done()
    assert hass.states.get(PLUG) is not None


async def create_link(
    hass: HomeAssistant, bay: str = "bay-1", plan: str | None = None, minutes: int | None = None
) -> dict[str, Any]:
    """Create a payment link through the action, as an automation would."""
    data = {"bay": bay} | ({"plan": plan} if plan else {})
    data |= {"minutes": minutes} if minutes is not None else {}
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


async def settle(hass: HomeAssistant) -> None:
    """Let state-change listeners run: HA dispatches them with call_soon, one hop per switch."""
    for _ in range(3):
        await hass.async_block_till_done()


async def tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float | timedelta
) -> None:
    """Move HA's clock on and let the timers that fall due run."""
    freezer.tick(seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await settle(hass)


async def pay(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> PaidPayment:
    """A customer pays a new link of bay-1 and Razorpay delivers ``payment_link.paid``."""
    paid = standin.pay_link((await create_link(hass))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    return paid


async def two_links_paid_in_turn(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> PaidPayment:
    """Two half hours sold while bay-1 is free (the action sells no top-up past its longest
    session), paid one after the other: the second is a top-up. Returns the second payment."""
    first, second = [standin.pay_link((await create_link(hass))["id"]) for _ in range(2)]
    for paid in (first, second):
        assert (await post_webhook(paid.payment_link_paid())).status == 200
        await settle(hass)
    return second


def plug_state(hass: HomeAssistant) -> str:
    """The state of bay-1's plug (a real HA switch)."""
    state = hass.states.get(PLUG)
    assert state is not None
    return state.state


def refund_amounts(standin: RazorpayStandin, payment_id: str) -> list[int]:
    """The amounts of the refunds of a payment Razorpay was asked for, in order."""
    calls = standin.calls_to("POST", f"/v1/payments/{payment_id}/refund")
    return [c.json["amount"] for c in calls]


def owed_repairs(hass: HomeAssistant) -> dict[str, dict[str, str]]:
    """The refund_owed repairs raised, by session id: their placeholders."""
    return {
        key[1].removeprefix("refund_owed_"): dict(issue.translation_placeholders or {})
        for key, issue in ir.async_get(hass).issues.items()
        if key[0] == DOMAIN and key[1].startswith("refund_owed_")
    }


# Entity registry fields that differ between the two HA lines the suite runs on: four the floor
# line (2025.4) does not have, and ``aliases``, an empty set there and ``[None]`` (the entity's
# own name) on the current line. A platform snapshot leaves them out, so one snapshot holds on
# both lines.
REGISTRY_FIELDS_OF_ONE_LINE = (
    "aliases",
    "compat_aliases",
    "object_id_base",
    "original_name_unprefixed",
    "suggested_object_id",
)


def _plain_keys(data: Any, path: Any) -> Any:
    """A mapping's enum keys as the strings they are: the current line keys state attributes
    with StrEnum members (``EntityStateAttribute.FRIENDLY_NAME``), the floor line with str.
    """
    del path  # syrupy's matcher signature
    if isinstance(data, dict) and any(type(key) is not str for key in data):
        return type(data)({str(key): value for key, value in data.items()})
    return data


def registry_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """``snapshot`` for ``snapshot_platform`` that reads the same on both HA lines."""
    return snapshot.with_defaults(exclude=props(*REGISTRY_FIELDS_OF_ONE_LINE), matcher=_plain_keys)
