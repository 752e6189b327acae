"""Where the customer's pages are: the addresses of a bay's page, poster, display and sessions.

Read by the pages, the QR code image, the actions and diagnostics, none of which needs the
HTTP handler for it. The public address is the pages' cloudhook, else HA's external, else its
internal URL; the display's address is secret (it shows a valid dynamic QR code).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.network import NoURLAvailableError

from .catalog import Bay
from .const import CONF_MERCHANT_NAME, CONF_PAGES_SECRET, CONF_PAGES_URL, CONF_PAGES_WEBHOOK_ID
from .pages_tokens import session_token
from .totp import current


class PageAddresses:
    """The addresses of one account's pages."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, bays: Mapping[str, Bay]) -> None:
        self.hass = hass
        self.entry = entry
        self.bays = bays

    @property
    def webhook_id(self) -> str:
        """The pages' webhook id (public: it is printed on every poster)."""
        webhook_id: str = self.entry.data[CONF_PAGES_WEBHOOK_ID]
        return webhook_id

    def base_url(self) -> str | None:
        """The pages' public address: the cloudhook, else HA's external, else internal URL."""
        if url := self.entry.data.get(CONF_PAGES_URL):
            return str(url)
        for allow_internal in (False, True):
            try:
                return webhook.async_generate_url(
                    self.hass, self.webhook_id, allow_internal=allow_internal
                )
            except NoURLAvailableError:
                continue
        return None

    def bay_url(self, bay_id: str) -> str | None:
        """The address of a bay's page (what its QR code holds)."""
        base = self.base_url()
        return f"{base}?{urlencode({'bay': bay_id})}" if base else None

    def qr_url(self, bay: Bay, now: float) -> str | None:
        """What the bay's QR code holds now: its page, with the password of a dynamic one."""
        url = self.bay_url(bay.bay_id)
        if url is None or not bay.dynamic_qr or bay.qr_secret is None:
            return url
        return f"{url}&{urlencode({'totp': current(bay.qr_secret, bay.qr_validity_s, now)[0]})}"

    def links(self, bay_id: str, *, display: bool = False) -> dict[str, str | None]:
        """The addresses the owner prints or shares for a bay; ``display``: the secret one too.

        The display's address works without a login and shows a valid code: whoever has it can
        buy (and hold the bay) from anywhere, so only an admin is given it.
        """
        base = self.base_url()
        bay = self.bays.get(bay_id)
        token = bay.display_token if bay is not None else None
        links: dict[str, str | None] = {
            "page_url": f"{base}?{urlencode({'bay': bay_id})}" if base else None,
            "poster_url": f"{base}?{urlencode({'bay': bay_id, 'poster': 'a4'})}" if base else None,
        }
        if display:
            links["display_url"] = (
                f"{base}?{urlencode({'display': token})}" if base and token else None
            )
        return links

    def session_url(self, lang: str | None, session_id: str) -> str | None:
        """The page of one session (Razorpay's callback after paying), in ``lang`` if given."""
        base = self.base_url()
        if base is None:
            return None
        token = session_token(self.entry.data[CONF_PAGES_SECRET], session_id)
        return f"{base}?{urlencode({'token': token} | ({'lang': lang} if lang else {}))}"

    def merchant_name(self) -> str:
        """The business name Razorpay's checkout shows, as the owner entered it."""
        return str(self.entry.options.get(CONF_MERCHANT_NAME) or self.hass.config.location_name)
