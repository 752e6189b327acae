"""The key secret, the webhook secret and the broker password never show anywhere.

A whole scenario runs at DEBUG for every logger: the account added through the config flow
(once with a wrong secret), a payment delivered with its three events (and forged and
wrongly signed ones), a session on the real agent (logged in to a Mosquitto with a password,
and once with a wrong one), a stop with a refund, a refund Razorpay refuses for good (a repair),
an owner's refund refused, reconciliation, the export and the diagnostics. Then every log line
(with its traceback), what went to stdout and stderr, every event on the bus, every repair,
every page fetched (states, diagnostics, the webhook's answers, the QR image), the export and
every error raised are searched for each secret, as written and as HTTP Basic auth carries it.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncGenerator, Generator
from pathlib import Path

import pytest

pytest.importorskip("gpiozero", reason="the relay agent's gpiozero is not installed")
pytest.importorskip("pi_mqtt_relay.agent", reason="the relay agent package is not installed")

from homeassistant.const import MATCH_ALL
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging.const import (
    CONF_API_BASE_URL,
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
)
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.fixtures import sign
from pi_mqtt_relay.config import parse_config
from tests.mosquitto import Broker
from tests.relay_harness import CrashableAgent, agent_yaml
from tests.tls import acl_broker

from .const import PLAN_SUBENTRY, WEBHOOK_ID, mqtt_bay, with_plans
from .helpers import create_link, entry_data, export_sessions
from .mqtt_helpers import wait_until

KEY_SECRET = "ks-Zq8v3Lw0pN5tRy2b"
WRONG_KEY_SECRET = "ks-WrongOne-7Hd92Kqx"
WEBHOOK_SECRET = "wh-Xk4m9Tq2Vb7s"
BROKER_PASSWORD = "bp-Hm3r8Qa6Wn1c"
WRONG_BROKER_PASSWORD = "bp-NotIt-4Ky8Pz2"
NODE = "kiosk-1"
HA_MQTT_USER = "homeassistant"
AGENT_USER = "pi-relay"


def _forms(key_id: str) -> dict[str, str]:
    """Each secret as it may be written: plain, and inside HTTP Basic auth with the key id."""
    forms = {
        "key secret": KEY_SECRET,
        "wrong key secret": WRONG_KEY_SECRET,
        "webhook secret": WEBHOOK_SECRET,
        "broker password": BROKER_PASSWORD,
        "wrong broker password": WRONG_BROKER_PASSWORD,
    }
    for name, secret in (("key secret", KEY_SECRET), ("wrong key secret", WRONG_KEY_SECRET)):
        forms[f"{name} (Basic auth)"] = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return forms


@pytest.fixture
async def standin(socket_enabled: None) -> AsyncGenerator[RazorpayStandin]:
    """Razorpay's stand-in, with a key secret of its own to look for."""
    server = RazorpayStandin(key_secret=KEY_SECRET)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def broker(tmp_path: Path, socket_enabled: None) -> Generator[Broker]:
    """A Mosquitto that wants a password from HA and from the agent."""
    server = acl_broker(tmp_path, dict.fromkeys((HA_MQTT_USER, AGENT_USER), BROKER_PASSWORD))
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
async def views(hass: HomeAssistant) -> None:
    """Register the diagnostics view before any test client freezes the HTTP router."""
    assert await async_setup_component(hass, "diagnostics", {})


def _agent(tmp_path: Path, broker: Broker, password: str, node: str = NODE) -> CrashableAgent:
    data = agent_yaml(tmp_path / node / "state.json", broker.port, node, [("bay-1", 17)])
    data["broker"] |= {"username": AGENT_USER, "password": password}
    return CrashableAgent(parse_config(data))


async def test_no_secret_is_logged_shown_or_exported(  # noqa: PLR0915
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    standin: RazorpayStandin,
    broker: Broker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("homeassistant", "custom_components", "pi_mqtt_relay", "paho", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    seen: list[str] = []  # everything else shown to someone: pages, errors, events, files
    events: list[Event] = []
    hass.bus.async_listen(MATCH_ALL, events.append)

    # HA's MQTT logs in with a password; the agent with its own, and once with a wrong one.
    mqtt = MockConfigEntry(
        domain="mqtt",
        data={
            "broker": "127.0.0.1",
            "port": broker.port,
            "username": HA_MQTT_USER,
            "password": BROKER_PASSWORD,
        },
    )
    mqtt.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mqtt.entry_id)
    impostor = _agent(tmp_path, broker, WRONG_BROKER_PASSWORD, node="kiosk-9")
    await hass.async_add_executor_job(impostor.start)
    agent = _agent(tmp_path, broker, BROKER_PASSWORD)
    await hass.async_add_executor_job(agent.start)

    # The account: first with a wrong key secret, which Razorpay refuses.
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_KEY_ID: standin.key_id,
            CONF_KEY_SECRET: WRONG_KEY_SECRET,
            CONF_WEBHOOK_SECRET: WEBHOOK_SECRET,
            "advanced": {CONF_API_BASE_URL: standin.base_url},
        },
    )
    assert result["errors"] == {"base": "invalid_auth"}
    seen.append(json.dumps(result, default=str))
    hass.config_entries.flow.async_abort(result["flow_id"])

    bay = mqtt_bay(NODE)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=standin.key_id,
        unique_id=standin.key_id,
        data=entry_data(standin) | {CONF_WEBHOOK_SECRET: WEBHOOK_SECRET},
        options={"ack_timeout": 5, "auto_refund": True},
        subentries_data=[PLAN_SUBENTRY, with_plans(bay, [PLAN_SUBENTRY])],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    runner = entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.driver.online)
    client = await hass_client()

    async def post(body: bytes, signature: str | None) -> None:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Razorpay-Signature"] = signature
        response = await client.post(f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers)
        seen.append(f"{response.status} {dict(response.headers)} {await response.text()}")

    # A customer pays; Razorpay delivers its three events; forgeries come too.
    link = await create_link(hass)
    seen.append(json.dumps(link))
    paid = standin.pay_link(link["id"])
    for webhook in paid.webhooks():
        await post(webhook.body, sign(webhook.body, WEBHOOK_SECRET))
    forged = paid.payment_captured().body.replace(b"captured", b"refunded")
    await post(forged, None)
    await post(forged, sign(forged, "not-the-secret"))
    await post(forged, sign(forged, WEBHOOK_SECRET)[::-1])
    await wait_until(hass, lambda: agent.powered("bay-1"))

    # The owner stops it (a refund goes out), then asks for a refund Razorpay refuses.
    standin.fail_next(f"/v1/payments/{paid.payment_id}/refund", 400)
    response = await hass.services.async_call(
        DOMAIN, "stop_session", {"bay": "bay-1"}, blocking=True, return_response=True
    )
    seen.append(json.dumps(response))
    for amount in (1, 10_000):
        try:
            response = await hass.services.async_call(
                DOMAIN,
                "refund",
                {"payment_id": paid.payment_id, "amount": amount},
                blocking=True,
                return_response=True,
            )
        except HomeAssistantError as err:
            seen.extend(_exception_chain(err))
        else:
            seen.append(json.dumps(response))
    # A refund that gets no answer is sent again by reconciliation.
    standin.fail_next("/v1/payments/", 500)
    await entry.runtime_data.reconciler.async_run()

    # What an owner looks at, and what is handed over.
    rows = await export_sessions(hass)
    assert rows
    seen.append(json.dumps(rows))
    export = await hass.services.async_call(
        DOMAIN, "export_sessions", {}, blocking=True, return_response=True
    )
    assert export is not None
    exported = Path(str(export["path"]))
    seen.append(await hass.async_add_executor_job(exported.read_text, "utf-8"))
    seen.append(json.dumps(await get_diagnostics_for_config_entry(hass, hass_client, entry)))
    for path in ("/api/states", "/api/config/config_entries/entry", "/api/error_log"):
        page = await client.get(path)
        seen.append(f"{path} {page.status} {await page.text()}")
    image = await client.get("/api/image_proxy/image.bay_1_payment_qr_code")
    seen.append((await image.read()).decode("latin-1"))
    seen.append(json.dumps([i.to_json() for i in ir.async_get(hass).issues.values()], default=str))
    seen.append(json.dumps([e.as_dict() for e in events], default=str))

    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_add_executor_job(agent.stop)
    await hass.async_add_executor_job(impostor.stop)
    await hass.config_entries.async_unload(mqtt.entry_id)
    await hass.async_block_till_done()

    # The wrong broker password was refused, and said so.
    assert any("refused the connection" in r.getMessage() for r in caplog.records)
    logs = [_formatted(record) for record in caplog.records]
    out, err = capsys.readouterr()
    assert any("Razorpay: refund" in line for line in logs), "DEBUG lines were captured"
    found = {
        name: [text[:300] for text in [*logs, out, err, *seen] if secret in text]
        for name, secret in _forms(standin.key_id).items()
    }
    assert found == {name: [] for name in found}


def _formatted(record: logging.LogRecord) -> str:
    """A log line as a handler writes it, with its traceback and its raw arguments."""
    text = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    return f"{text} {record.args!r}"


def _exception_chain(err: BaseException) -> list[str]:
    texts = []
    current: BaseException | None = err
    while current is not None:
        texts.append(f"{current!s} {current!r} {getattr(current, 'translation_placeholders', '')}")
        current = current.__cause__ or current.__context__
    return texts
