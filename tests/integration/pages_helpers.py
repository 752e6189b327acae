"""Helpers for the customer pages' tests: a customer's browser without JavaScript."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch
from urllib.parse import parse_qs, urlencode, urlsplit

from aiohttp import ClientResponse
from homeassistant.components import webhook
from homeassistant.core import HomeAssistant
from homeassistant.util.aiohttp import MockRequest, serialize_response
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging import store
from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import PaidPayment, RazorpayStandin

from .const import PAGES_ID
from .helpers import PostWebhook, settle
from .storage_helpers import DISK_FULL

PAGES_PATH = f"/api/webhook/{PAGES_ID}"
EXTERNAL_URL = "https://charge.example.com"
BAY_URL = f"{EXTERNAL_URL}{PAGES_PATH}?bay=bay-1"
LINKS = ("POST", "/v1/payment_links")
MAX_PAGE = 30 * 1024


@dataclass
class Answer:
    """A page as a browser gets it."""

    status: int
    content_type: str
    text: str

    def ticket(self) -> str:
        """The ticket a bay page's forms carry (who tapped Pay; a dynamic QR code's proof)."""
        match = re.search(r'name="ticket" value="([^"]+)"', self.text)
        assert match is not None, self.text
        return match.group(1)

    def payers_page(self) -> str | None:
        """The query of the payment's own page a redirect page links to (None: no link).

        Only the page that made the link is given it: its token and the key to cancel.
        """
        match = re.search(r'<a href="\?([^"]*token=[^"]+)">', self.text)
        return match.group(1).replace("&amp;", "&") if match else None

    def link_to_razorpay(self) -> str:
        """Where the page sends the customer (its meta refresh, which equals its link)."""
        match = re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', self.text)
        assert match is not None, self.text
        return match.group(1).replace("&amp;", "&")


class Customer:
    """A phone's browser on the pages' webhook (no JavaScript)."""

    def __init__(self, hass: HomeAssistant, client_factory: ClientSessionGenerator) -> None:
        self.hass = hass
        self._factory = client_factory
        self._client: Any = None

    async def _answer(self, response: ClientResponse) -> Answer:
        return Answer(response.status, response.content_type, await response.text())

    async def client(self) -> Any:
        """The test client (made at the first request: HA's router is frozen by it)."""
        if self._client is None:
            self._client = await self._factory()
        return self._client

    async def get(self, query: str, headers: dict[str, str] | None = None) -> Answer:
        client = await self.client()
        return await self._answer(await client.get(f"{PAGES_PATH}?{query}", headers=headers))

    async def post(
        self, query: str, form: dict[str, str] | bytes, headers: dict[str, str] | None = None
    ) -> Answer:
        client = await self.client()
        response = await client.post(f"{PAGES_PATH}?{query}", data=form, headers=headers)
        return await self._answer(response)

    async def send(
        self, via: str, method: str, query: str, form: dict[str, str] | None = None
    ) -> Answer:
        """A request through HA's HTTP server (``via="http"``) or HA Cloud's cloudhook."""
        if via == "cloudhook":
            return await cloudhook(self.hass, method, query, urlencode(form or {}))
        client = await self.client()
        response = await client.request(method, f"{PAGES_PATH}?{query}", data=form)
        return await self._answer(response)

    async def pay_button(self, query: str, plan: str = "p30", **form: str) -> Answer:
        """Tap a Pay (or Add time) button (of a page whose ticket is not known: a new visitor)."""
        return await self.post(query, {"plan": plan, **form})

    async def open_and_pay(
        self, query: str = "bay=bay-1", plan: str = "p30", *, via: str = "http", **form: str
    ) -> Answer:
        """Open a bay page, then tap Pay on it (with the page's ticket), directly or through
        HA Cloud's cloudhook (``via="cloudhook"``: a customer without an address)."""
        page = await self.send(via, "GET", query)
        # A page that sells nothing (held, out of order) has no form and so no ticket.
        ticket = {"ticket": page.ticket()} if 'name="ticket"' in page.text else {}
        return await self.send(via, "POST", query, {"plan": plan, **ticket, **form})


async def cloudhook(hass: HomeAssistant, method: str, query: str, body: str = "") -> Answer:
    """A request as HA Cloud relays it (``cloud.client.async_webhook_message``), and its answer
    as the relay passes it on: status, the body as text, the ``Content-Type`` only."""
    request = MockRequest(
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"} if body else {},
        method=method,
        query_string=query,
        mock_source="cloud",
    )
    response = await webhook.async_handle_webhook(hass, PAGES_ID, request)  # type: ignore[arg-type]
    serialized = serialize_response(response)
    return Answer(serialized["status"], response.content_type, serialized["body"] or "")


def callback_query(standin: RazorpayStandin, link_id: str) -> str:
    """The query of the page Razorpay sends the customer back to (the link's callback)."""
    url = urlsplit(standin.links[link_id]["callback_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{EXTERNAL_URL}{PAGES_PATH}"
    return url.query


def link_of(standin: RazorpayStandin, answer: Answer) -> str:
    """The id of the link a redirect page sends the customer to."""
    url = answer.link_to_razorpay()
    (link_id,) = [k for k, link in standin.links.items() if link["short_url"] == url]
    return link_id


def token_of(query: str) -> str:
    (token,) = parse_qs(query)["token"]
    return token


async def pay_link(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, link_id: str
) -> PaidPayment:
    """The customer pays on Razorpay's page; Razorpay delivers ``payment_link.paid``."""
    paid = standin.pay_link(link_id)
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    return paid


def assert_self_contained(answer: Answer) -> None:
    """One document a cloudhook can carry: nothing loaded from elsewhere, small enough."""
    assert answer.content_type == "text/html"
    assert len(answer.text.encode()) < MAX_PAGE
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", answer.text)
    assert "@import" not in answer.text


async def reconfigure_bay(hass: HomeAssistant, **changes: Any) -> tuple[Any, dict[str, Any]]:
    """Submit bay 1's form with its fields as stored plus ``changes``, as the owner does.

    Returns the flow's answer and the bay's stored data after it.
    """
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    (sub_id,) = [s for s, sub in entry.subentries.items() if sub.subentry_type == "bay"]
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "bay"), context={"source": "reconfigure", "subentry_id": sub_id}
    )
    data = entry.subentries[sub_id].data
    # The form of the bay's kind of relay; the QR and hold fields sit in their section.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": f"reconfigure_{data['driver']}"}
    )
    form = {str(key) for key in result["data_schema"].schema} - {"bay_id"}
    values = {k: v for k, v in data.items() if k in form} | changes
    section = {k: values.pop(k) for k in _QR_SECTION if k in values}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], values | {"qr_options": section}
    )
    await hass.async_block_till_done()
    return result, dict(entry.subentries[sub_id].data)


async def edit_bay(hass: HomeAssistant, **changes: Any) -> dict[str, Any]:
    """Edit bay 1 in its form; return the bay's stored data."""
    result, data = await reconfigure_bay(hass, **changes)
    assert result.get("reason") == "reconfigure_successful", result
    return data


async def static_qr_code(hass: HomeAssistant) -> str:
    """Tick bay 1's "Static UPI QR code" as its owner does; the code's id."""
    qr_id = (await edit_bay(hass, static_qr=True))["qr_code_id"]
    assert isinstance(qr_id, str)
    return qr_id


_QR_SECTION = ("static_qr", "hold_minutes", "dynamic_qr", "qr_validity_s")


async def dynamic_bay(hass: HomeAssistant, validity_s: int = 60) -> dict[str, Any]:
    """Bay 1 with a dynamic QR code, as its owner turns it on; the bay's stored data."""
    data = await edit_bay(hass, dynamic_qr=True, qr_validity_s=validity_s)
    assert len(data["qr_secret"]) > 16
    assert len(data["display_token"]) > 16
    return data


async def set_tax_details(hass: HomeAssistant, tax: dict[str, Any]) -> None:
    """The owner saves their tax details (``options["tax"]``); the entry reloads with them."""
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    hass.config_entries.async_update_entry(entry, options={**entry.options, "tax": tax})
    await hass.async_block_till_done()
    assert entry.runtime_data.tax.gstin == tax["gstin"]


@contextmanager
def failing_b2b() -> Iterator[None]:
    """A B2B request's transaction fails at its end as a full disk would (rolled back)."""
    real = store.issue_b2b

    def issue(*args: Any) -> Any:
        real(*args)
        raise DISK_FULL

    with patch.object(store, "issue_b2b", side_effect=issue):
        yield
