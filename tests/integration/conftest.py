"""Fixtures for the integration's tests (pytest-homeassistant-custom-component).

Razorpay itself is out of reach here, so the real ``razorpay`` SDK talks HTTP to a local
stand-in of its API (``devtools/razorpay_standin``, shared with ``scripts/demo``); that
stand-in is the only mocked part.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Generator
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

import paho.mqtt.client as paho
import pytest
from aiohttp import ClientResponse
from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.auth.providers.homeassistant import HassAuthProvider
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from paho.mqtt.enums import CallbackAPIVersion
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.qr_charging import PLATFORMS
from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.fixtures import Webhook
from tests.mosquitto import Broker

from .browser_helpers import ARGS, CHROMIUM
from .const import (
    BAY_SUBENTRY,
    ENTRY_ID,
    PAGES_ID,
    PLAN_SUBENTRY,
    RATE_PLAN_SUBENTRY,
    WEBHOOK_ID,
    WEBHOOK_SECRET,
    mqtt_bay,
    with_plans,
)
from .flow_helpers import add_account
from .helpers import PostWebhook, entry_data, setup_plug
from .meter_helpers import ENERGY_PLAN_SUBENTRY, announce, metered_switch_bay, setup_meter
from .mqtt_helpers import NODE, SITE_B, ScriptedAgent, wait_until
from .pages_helpers import EXTERNAL_URL, Customer


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
def ack_timeout() -> float:
    """Seconds an MQTT bay waits for the agent's acknowledgement (short: the broker is real)."""
    return 1


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """The plans bay-1 offers (a test module overrides this fixture to offer others)."""
    return [PLAN_SUBENTRY]


@pytest.fixture
def config_entry(standin: RazorpayStandin, bay_plans: list[dict[str, Any]]) -> MockConfigEntry:
    """An account with bay-1 on a plug, offering ``bay_plans`` (p30 unless a test says)."""
    return MockConfigEntry(
        domain=DOMAIN,
        # Fixed, as HA core's tests fix theirs: the entities' unique ids (and so the platform
        # snapshots) contain it.
        entry_id=ENTRY_ID,
        title=standin.key_id,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[*bay_plans, with_plans(BAY_SUBENTRY, bay_plans)],
        minor_version=2,
    )


@pytest.fixture
def platforms() -> list[Platform]:
    """The platforms ``init_integration`` sets up: all (a platform's test parametrises one)."""
    return list(PLATFORMS)


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, config_entry: MockConfigEntry, platforms: list[Platform]
) -> AsyncGenerator[MockConfigEntry]:
    """The account with bay-1 on a plug that is there and off, set up with ``platforms``."""
    await setup_plug(hass)
    config_entry.add_to_hass(hass)
    # Patched until the end of the test: HA unloads the entry at teardown, these platforms only.
    with patch("custom_components.qr_charging.PLATFORMS", platforms):
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
        yield config_entry


@pytest.fixture
async def loaded_entry(init_integration: MockConfigEntry) -> MockConfigEntry:
    """The account with bay-1 on a plug that is there and off, set up (every platform)."""
    return init_integration


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots through HA's extension, as HA core's are: states and registry entries as HA
    serialises them, run-time ids as ``<ANY>`` (the plugin's own override of ``snapshot`` loses
    to syrupy's here).
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Every entity registered enabled, those disabled by default too (as in HA core)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


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


# -- the customer pages ---------------------------------------------------------------------


@pytest.fixture
async def customer(
    hass: HomeAssistant, loaded_entry: Any, hass_client_no_auth: ClientSessionGenerator
) -> Customer:
    """A customer's browser; HA's external address is where the QR codes point."""
    await hass.config.async_update(external_url=EXTERNAL_URL)
    return Customer(hass, hass_client_no_auth)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium through Playwright (its own browser download is never used)."""
    from playwright.async_api import async_playwright  # noqa: PLC0415

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def pages_url(
    hass: HomeAssistant,
    loaded_entry: Any,
    standin: RazorpayStandin,
    hass_client_no_auth: ClientSessionGenerator,
) -> str:
    """HA served on 127.0.0.1 as the customer's phone reaches it; its pages' address."""
    client = await hass_client_no_auth()
    base = str(client.make_url("")).rstrip("/")
    await hass.config.async_update(external_url=base)
    standin.webhook_url = f"{base}/api/webhook/{WEBHOOK_ID}"
    standin.webhook_secret = WEBHOOK_SECRET
    return f"{base}/api/webhook/{PAGES_ID}"


# -- the MQTT side: a real Mosquitto, HA's MQTT, the scripted agent and its bay -------------
# (a module that needs another broker, agent or bay entry defines its own of the same name)


@pytest.fixture
def broker(tmp_path: Path, socket_enabled: None) -> Generator[Broker]:
    """A Mosquitto on 127.0.0.1 for anyone."""
    server = Broker(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mqtt_login() -> dict[str, Any]:
    """What HA's MQTT integration logs in with, besides the broker's address: nothing."""
    return {}


@pytest.fixture
async def mqtt_entry(
    hass: HomeAssistant, broker: Broker, mqtt_login: dict[str, Any]
) -> AsyncGenerator[MockConfigEntry]:
    """HA's MQTT integration connected to the broker.

    HA's MQTT reads configuration.yaml from the config dir at setup (``own_config_dir``).
    """
    entry = MockConfigEntry(
        domain="mqtt", data={"broker": "127.0.0.1", "port": broker.port, **mqtt_login}
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
def intruder(broker: Broker) -> Generator[paho.Client]:
    """Another client of the broker: whoever else can publish on a bay's topics."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="intruder")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    yield client
    client.loop_stop()
    client.disconnect()


@pytest.fixture
def agent(broker: Broker) -> Generator[ScriptedAgent]:
    scripted = ScriptedAgent(broker.port)
    yield scripted
    scripted.close()


@pytest.fixture
def metered_agent(agent: ScriptedAgent) -> ScriptedAgent:
    """The scripted agent, its config naming a PZEM-004T for bay-1 (issue #24)."""
    announce(agent)
    return agent


@pytest.fixture
async def metered(
    hass: HomeAssistant, metered_agent: ScriptedAgent, mqtt_bay_entry: MockConfigEntry
) -> MockConfigEntry:
    """The account with bay-1 on the metered agent, once HA has read the agent's meter."""
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.driver.metered)
    return mqtt_bay_entry


@pytest.fixture
async def mqtt_bay_entry(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    mqtt_entry: MockConfigEntry,
    agent: ScriptedAgent,
    bay_plans: list[dict[str, Any]],
    ack_timeout: float,
) -> MockConfigEntry:
    """The account with bay-1 on the scripted agent, set up and seeing the agent online."""
    bay = mqtt_bay(NODE)
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        options={"ack_timeout": ack_timeout, "auto_refund": True},
        subentries_data=[*bay_plans, with_plans(bay, bay_plans)],
    )
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "http", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(hass, lambda: entry.runtime_data.bays.runners["bay-1"].driver.online)
    return entry


@pytest.fixture
def site_b_agent(broker: Broker) -> Generator[ScriptedAgent]:
    """Another site's kiosk-1: the scripted agent's node id under the prefix ``site-b``."""
    scripted = ScriptedAgent(broker.port, SITE_B)
    yield scripted
    scripted.close()


@pytest.fixture
async def two_sites_entry(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    mqtt_entry: MockConfigEntry,
    agent: ScriptedAgent,
    site_b_agent: ScriptedAgent,
) -> MockConfigEntry:
    """bay-1 on kiosk-1 (the default prefix) and bay-2 on site-b's kiosk-1 (its bay-1), set up
    and seeing both agents online."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[PLAN_SUBENTRY, mqtt_bay(NODE), mqtt_bay(NODE, SITE_B, "bay-2")],
    )
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "http", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    runners = entry.runtime_data.bays.runners
    await wait_until(hass, lambda: all(r.driver.online for r in runners.values()))
    return entry


# -- the accounts of the config flow tests (added to HA, not set up) ---------------------------


@pytest.fixture
def bare_entry(hass: HomeAssistant, standin: RazorpayStandin) -> MockConfigEntry:
    """An account with no plans and no bays."""
    return add_account(hass, standin)


@pytest.fixture
def plan_entry(hass: HomeAssistant, standin: RazorpayStandin) -> MockConfigEntry:
    """An account with the plan p30."""
    return add_account(hass, standin, PLAN_SUBENTRY)


@pytest.fixture
def rate_bay_entry(hass: HomeAssistant, standin: RazorpayStandin) -> MockConfigEntry:
    """An account with a fixed plan, a per-minute plan and bay-1."""
    return add_account(hass, standin, PLAN_SUBENTRY, RATE_PLAN_SUBENTRY, BAY_SUBENTRY)


# -- a metered switch bay (issue #24) ---------------------------------------------------------


@pytest.fixture
async def metered_entry(hass: HomeAssistant, standin: RazorpayStandin) -> MockConfigEntry:
    """bay-1 on the plug, with its meter at 12 kWh, selling energy and the 30-minute plan."""
    plans = [PLAN_SUBENTRY, ENERGY_PLAN_SUBENTRY]
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=standin.key_id,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[*plans, metered_switch_bay(with_plans(BAY_SUBENTRY, plans))],
        minor_version=2,
    )
    await setup_plug(hass)
    await setup_meter(hass, energy_kwh=12.0)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry
