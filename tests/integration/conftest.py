"""Fixtures for the integration's tests (pytest-homeassistant-custom-component).

Razorpay itself is out of reach here, so the real ``razorpay`` SDK talks HTTP to a local
stand-in of its API (``devtools/razorpay_standin``, shared with ``scripts/demo``); that
stand-in is the only mocked part.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.auth.providers.homeassistant import HassAuthProvider
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging.const import (
    CONF_API_BASE_URL,
    CONF_BAY_ID,
    CONF_CLOUDHOOK,
    CONF_CODE,
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_MINUTES,
    CONF_NAME,
    CONF_PAGES_SECRET,
    CONF_PAGES_WEBHOOK_ID,
    CONF_PLANS,
    CONF_PRICE_PAISE,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
    SUBENTRY_BAY,
    SUBENTRY_PLAN,
)
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.fixtures import Webhook

WEBHOOK_ID = "razorpay-test-hook"
PAGES_ID = "pages-test-hook"
PAGES_SECRET = "pages-test-secret-0123456789"
WEBHOOK_SECRET = "whsec-test-secret"
PLAN_PRICE = 2000  # paise: ₹20 for 30 minutes
PLUG = "switch.bay_1_plug"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: Any) -> Generator[None]:
    """Let HA load custom_components/qr_charging in every test."""
    yield


@pytest.fixture(autouse=True)
def own_config_dir(hass: HomeAssistant, tmp_path: Path) -> None:
    """Each test its own config folder: the ledger files must not pile up in the plugin's."""
    (tmp_path / "configuration.yaml").write_text("")
    hass.config.config_dir = str(tmp_path)


@pytest.fixture
async def standin(socket_enabled: None) -> AsyncGenerator[RazorpayStandin]:
    """Razorpay's API on 127.0.0.1 (the real SDK talks to it over HTTP)."""
    server = RazorpayStandin()
    await server.start()
    yield server
    await server.stop()


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


def mqtt_bay(node: str) -> dict[str, Any]:
    """bay-1 as the bay of that name on ``node``'s pi-mqtt-relay agent."""
    mqtt = {"driver": "mqtt", "node": node, "agent_bay": "bay-1", "switch_entity": None}
    return {**BAY_SUBENTRY, "data": {**BAY_SUBENTRY["data"], **mqtt}}


@pytest.fixture
def ack_timeout() -> float:
    """Seconds an MQTT bay waits for the agent's acknowledgement (short: the broker is real)."""
    return 1


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """The plans bay-1 offers (a test module overrides this fixture to offer others)."""
    return [PLAN_SUBENTRY]


def with_plans(bay: dict[str, Any], plans: list[dict[str, Any]]) -> dict[str, Any]:
    """A bay subentry offering these plans."""
    codes = [plan["data"][CONF_CODE] for plan in plans]
    return {**bay, "data": {**bay["data"], CONF_PLANS: codes}}


@pytest.fixture
def config_entry(standin: RazorpayStandin, bay_plans: list[dict[str, Any]]) -> MockConfigEntry:
    """An account with bay-1 on a plug, offering ``bay_plans`` (p30 unless a test says)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=standin.key_id,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[*bay_plans, with_plans(BAY_SUBENTRY, bay_plans)],
        minor_version=2,
    )


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


@pytest.fixture
async def loaded_entry(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """The account with bay-1 on a plug that is there and off, set up."""
    await setup_plug(hass)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


@pytest.fixture
async def kiosk_user(hass: HomeAssistant, local_auth: HassAuthProvider) -> MockUser:
    """A plain (non-admin) user, as a kiosk screen is logged in: it may control every entity."""
    users = await hass.auth.async_get_group(GROUP_ID_USER)
    return MockUser(groups=[users]).add_to_hass(hass)


@pytest.fixture(params=["read_only", "kiosk"])
def non_admin_user(
    request: pytest.FixtureRequest, hass_read_only_user: MockUser, kiosk_user: MockUser
) -> MockUser:
    """Each kind of non-admin user in turn: read-only, then plain."""
    return hass_read_only_user if request.param == "read_only" else kiosk_user


PostWebhook = Callable[..., Awaitable[ClientResponse]]


@pytest.fixture
async def post_webhook(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> PostWebhook:
    """POST a delivery to the integration's webhook as Razorpay would.

    An async iterable body is sent chunked, without Content-Length.

    The test client starts HA's web app, which then takes no new routes: it is made at the first
    delivery, after the test has set up what it needs.
    """
    clients: list[Any] = []

    async def post(
        webhook: Webhook | None = None,
        *,
        body: bytes | AsyncIterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        if webhook is not None:
            body = webhook.body if body is None else body
            headers = webhook.headers(WEBHOOK_SECRET) if headers is None else headers
        if not clients:
            clients.append(await hass_client_no_auth())
        return await clients[0].post(f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers or {})

    return post


# The customer pages' fixture (a browser on the pages' webhook), shared by their tests.
# The broker, HA's MQTT, the scripted agent and its bay, shared by the MQTT tests.
from .mqtt_helpers import (  # noqa: E402, F401
    agent,
    broker,
    intruder,
    mqtt_bay_entry,
    mqtt_entry,
    mqtt_login,
)
from .pages_helpers import customer  # noqa: E402, F401
