"""Home Assistant's setup, through its own HTTP APIs as a person would in its UI."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .dashboard import Dashboard
from .homeassistant import HomeAssistant, HomeAssistantError
from .processes import wait_for
from .settings import (
    BAY_SETUP,
    BAYS,
    ENERGY_PLAN,
    ENTITY_KEYS,
    FULL_RULE,
    KEY_ID,
    KEY_SECRET,
    METER_ENTITY_KEYS,
    METERED_BAY,
    NODE,
    NODE_NAME,
    OWNER_NAME,
    OWNER_USERNAME,
    PLANS,
    PREFIX,
    RATE_PLAN,
    WEBHOOK_SECRET,
    DemoError,
    say,
    step,
)


class HaSetup(Dashboard):
    """The stack, with Home Assistant set up through its own HTTP APIs."""

    async def setup_home_assistant(self) -> None:
        """Onboarding, MQTT, the account, plans, the agent's bays, the dashboard; idempotent."""
        ha = self.ha
        assert ha is not None
        async with step("onboarding Home Assistant / logging in as the demo owner"):
            await self._owner(ha)
            await wait_for("Home Assistant running", ha.running, 300, interval=0.5)
        async with step("setting up the Razorpay account, its plans, MQTT and the agent's bays"):
            entry_id = await self._account(ha)
            await self._plans(ha, entry_id)
            await self._mqtt(ha)
            await self._bays(ha, entry_id)
            await self._bay_settings(ha, entry_id)
            await self._standin_webhook()
        async with step("waiting for the bays to come online in Home Assistant"):
            await self._find_entities(ha)
            for bay, _, _ in BAYS:
                status = self.entities[bay]["status"]
                await wait_for(
                    f"{bay} online in Home Assistant",
                    lambda status=status: self._state_is_not(status, ("offline", "unavailable")),
                    120,
                    interval=0.3,
                )
            answer = await ha.action("qr_charging", "bay_links", {})
            self.links = {bay: dict(links) for bay, links in answer["bays"].items()}
            self.write_dashboard()

    async def _state_is_not(self, entity_id: str, states: tuple[str, ...]) -> bool:
        assert self.ha is not None
        try:
            state = await self.ha.state(entity_id)
        except HomeAssistantError:
            return False
        return state["state"] not in states

    async def _owner(self, ha: HomeAssistant) -> None:
        password = self.state.setdefault("owner_password", f"demo-{secrets.token_hex(4)}")
        self.save_state()
        steps = await ha.onboarding_steps()
        if steps and not all(steps.values()):
            await ha.onboard(OWNER_NAME, OWNER_USERNAME, password)
            say(f"    onboarded: owner '{OWNER_USERNAME}' created")
        elif (token := self.state.get("token")) and await ha.token_works(token):
            ha.token = token
        else:
            await ha.login(OWNER_USERNAME, password)
        if ha.token != self.state.get("token"):
            # The owner's long-lived token: the summary's curl line and --check use it.
            token = await ha.ws(
                {
                    "type": "auth/long_lived_access_token",
                    "client_name": f"scripts/demo {time.strftime('%Y-%m-%d %H:%M')}",
                    "lifespan": 3650,
                }
            )
            ha.token = self.state["token"] = str(token)
            self.save_state()
        token_file = self.dir / "owner-token"
        token_file.write_text(str(ha.token))
        token_file.chmod(0o600)

    async def _account(self, ha: HomeAssistant) -> str:
        entries = await ha.entries("qr_charging")
        if entries:
            return str(entries[0]["entry_id"])
        result = await ha.flow(
            "qr_charging",
            [
                {
                    "key_id": KEY_ID,
                    "key_secret": KEY_SECRET,
                    "webhook_secret": WEBHOOK_SECRET,
                    "advanced": {"api_base_url": self.standin_url},
                }
            ],
        )
        if result.get("type") != "create_entry":
            raise DemoError(f"the Razorpay account was not added: {result}")
        placeholders = result.get("description_placeholders") or {}
        url = str(placeholders.get("webhook_url", ""))
        self.state["webhook_path"] = "/api/webhook/" + url.rsplit("/api/webhook/", 1)[-1]
        self.state["webhook_events"] = [
            e.strip() for e in str(placeholders.get("events", "")).split(",") if e.strip()
        ]
        self.save_state()
        say(f"    account {KEY_ID} added; its webhook: {self.state['webhook_path']}")
        return str(result["result"]["entry_id"])

    async def _plans(self, ha: HomeAssistant, entry_id: str) -> None:
        have = {
            sub["unique_id"]
            for sub in await ha.subentries(entry_id)
            if sub["subentry_type"] in ("plan", "rate_plan", "energy_plan")
        }
        for code, name, minutes, rupees in PLANS:
            if code not in have:
                await ha.subentry_flow(
                    entry_id,
                    "plan",
                    {"code": code, "name": name, "minutes": minutes, "price": rupees},
                )
                say(f"    plan {code}: {name} for ₹{rupees}")
        code, name, rate, fewest, most = RATE_PLAN
        if code not in have:
            await ha.subentry_flow(
                entry_id,
                "rate_plan",
                {
                    "code": code,
                    "name": name,
                    "rate": rate,
                    "min_minutes": fewest,
                    "max_minutes": most,
                },
            )
            say(f"    plan {code}: ₹{rate} a minute, {fewest} to {most} minutes")
        code, name, price, low, high, cap = ENERGY_PLAN
        if code not in have:
            await ha.subentry_flow(
                entry_id,
                "energy_plan",
                {
                    "code": code,
                    "name": name,
                    "price": price,
                    "min_amount": low,
                    "max_amount": high,
                    "minutes": cap,
                },
            )
            say(f"    plan {code}: ₹{price} a kWh, ₹{low} to ₹{high}, at most {cap} minutes")

    async def _mqtt(self, ha: HomeAssistant) -> None:
        if await ha.entries("mqtt"):
            return
        result = await ha.flow("mqtt", [{"broker": "127.0.0.1", "port": self.ports["broker"]}])
        if result.get("type") != "create_entry":
            raise DemoError(f"MQTT was not added: {result}")
        say(f"    MQTT broker 127.0.0.1:{self.ports['broker']} added")

    async def _bays(self, ha: HomeAssistant, entry_id: str) -> None:
        """The agent's bays, through the discovery flow its retained config message starts."""

        async def configured() -> set[str]:
            subs = await ha.subentries(entry_id)
            return {sub["unique_id"] for sub in subs if sub["subentry_type"] == "bay"}

        if {bay for bay, _, _ in BAYS} <= await configured():
            return
        flows: list[dict[str, Any]] = []

        async def discovered() -> bool:
            flows[:] = await ha.flows_in_progress("qr_charging")
            return bool(flows)

        try:
            await wait_for("the agent's discovery", discovered, 20, interval=0.5)
        except TimeoutError:
            # Discovery ran before the account had plans (an interrupted first start): MQTT's
            # reload makes it read the agent's retained config message again.
            [mqtt] = await ha.entries("mqtt")
            await ha.request("POST", f"/api/config/config_entries/entry/{mqtt['entry_id']}/reload")
            await wait_for("the agent's discovery", discovered, 60, interval=0.5)
        result = await ha.continue_flow(flows[0]["flow_id"], {})
        if result.get("reason") != "agent_added":
            raise DemoError(f"the agent's bays were not added: {result}")
        say(f"    discovered agent '{NODE_NAME}': bays {', '.join(b for b, _, _ in BAYS)} added")
        await wait_for("the bays' subentries", lambda: self._has_bays(configured), 30)

    async def _bay_settings(self, ha: HomeAssistant, entry_id: str) -> None:
        """Each bay's plans and QR code as ``BAY_SETUP`` says, through the bay's Reconfigure.

        Discovery offers every plan at every bay; the owner then edits a bay in its form.
        """
        wanted = {bay: [list(plans), dynamic] for bay, (plans, dynamic) in BAY_SETUP.items()}
        wanted[METERED_BAY].append(FULL_RULE)
        if self.state.get("bay_setup") == wanted:
            return
        subs = {
            s["unique_id"]: s for s in await ha.subentries(entry_id) if s["subentry_type"] == "bay"
        }
        for bay, name, _ in BAYS:
            plans, dynamic = BAY_SETUP[bay]
            result = await ha.reconfigure_subentry(
                entry_id,
                "bay",
                subs[bay]["subentry_id"],
                [
                    {"next_step_id": "reconfigure_mqtt"},
                    {
                        "name": name,
                        "plans": list(plans),
                        "node": NODE,
                        "agent_bay": bay,
                        "prefix": PREFIX,
                        "default_minutes": 30,
                        "max_minutes": 240,
                        "qr_options": {
                            "static_qr": False,
                            "hold_minutes": 20,
                            "dynamic_qr": dynamic,
                            "qr_validity_s": 60,
                        },
                        **({"meter_options": FULL_RULE} if bay == METERED_BAY else {}),
                    },
                ],
            )
            if result.get("reason") != "reconfigure_successful":
                raise DemoError(f"{bay} was not set up: {result}")
            qr = "a dynamic QR code on its display" if dynamic else "a printed QR code"
            metered = (
                f"; metered, vehicle full under {FULL_RULE['full_below_w']} W"
                if bay == METERED_BAY
                else ""
            )
            say(f"    {bay}: plans {', '.join(plans)}; {qr}{metered}")
        self.state["bay_setup"] = wanted
        self.save_state()

    @staticmethod
    async def _has_bays(configured: Callable[[], Coroutine[Any, Any, set[str]]]) -> bool:
        return {bay for bay, _, _ in BAYS} <= await configured()

    async def _standin_webhook(self) -> None:
        """What the owner types into Razorpay's dashboard: the webhook URL, secret and events."""
        assert self.session is not None
        async with self.session.post(
            f"{self.standin_url}/dashboard/webhook",
            json={
                "url": f"{self.ha_url}{self.state['webhook_path']}",
                "secret": WEBHOOK_SECRET,
                "events": self.state.get("webhook_events") or None,
            },
        ) as response:
            if response.status != 200:
                raise DemoError(f"the stand-in's webhook was not set: {await response.text()}")

    async def _find_entities(self, ha: HomeAssistant) -> None:
        async def found() -> bool:
            registry = await ha.entity_registry()
            by_unique = {
                e["unique_id"]: e["entity_id"] for e in registry if e["platform"] == "qr_charging"
            }
            entities: dict[str, dict[str, str]] = {}
            for bay, _, _ in BAYS:
                entities[bay] = {}
                for _, key in ENTITY_KEYS + (METER_ENTITY_KEYS if bay == METERED_BAY else ()):
                    match = [eid for uid, eid in by_unique.items() if uid.endswith(f"_{bay}_{key}")]
                    if not match:
                        return False
                    entities[bay][key] = match[0]
            self.entities = entities
            return True

        try:
            await wait_for("the bays' entities", found, 8, interval=0.5)
        except TimeoutError:
            # Seen with HA 2025.4.4: after discovery adds two bays at once, the second bay's
            # entities only come with the entry's next reload (the UI's "Reload" does it too).
            [entry] = await ha.entries("qr_charging")
            say("    a bay's entities are missing after discovery: reloading the account's entry")
            await ha.request("POST", f"/api/config/config_entries/entry/{entry['entry_id']}/reload")
            await wait_for("the bays' entities", found, 60, interval=0.5)
