"""What the account tells the owner: bus events, repair issues, and its bays' entities."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import DOMAIN, EVENT_SESSION_FAILED


def bay_signal(entry_id: str, bay_id: str) -> str:
    """The dispatcher signal a bay's entities listen to."""
    return f"{DOMAIN}_{entry_id}_{bay_id}"


def site_signal(entry_id: str, site_id: str) -> str:
    """The dispatcher signal a site's entities listen to (its openings and closings)."""
    return f"{DOMAIN}_{entry_id}/site/{site_id}"


class Notices:
    """Events, repairs and entity refreshes of one account."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self.hass = hass
        self.entry_id = entry_id

    @callback
    def fire(self, event_type: str, data: dict[str, Any]) -> None:
        """Fire an event of this account (automations and blueprints listen to them)."""
        self.hass.bus.async_fire(event_type, {"entry_id": self.entry_id, **data})

    @callback
    def session_failed(
        self,
        bay_id: str | None,
        session_id: str | None,
        payment_ids: list[str],
        reason: str,
        detail: str | None = None,
    ) -> None:
        """Announce a session that will not (or no longer) run."""
        self.fire(
            EVENT_SESSION_FAILED,
            {
                "bay": bay_id,
                "session_id": session_id,
                "payment_ids": payment_ids,
                "reason": reason,
                "detail": detail,
            },
        )

    @callback
    def raise_repair(self, issue_id: str, key: str, placeholders: dict[str, str]) -> None:
        """An error the owner must act on; kept across restarts until it is dealt with."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key=key,
            translation_placeholders=placeholders,
        )

    @callback
    def clear_repair(self, issue_id: str) -> None:
        """The owner no longer needs to act."""
        ir.async_delete_issue(self.hass, DOMAIN, issue_id)

    @callback
    def bay_changed(self, bay_id: str | None) -> None:
        """Tell a bay's entities to refresh."""
        if bay_id is not None:
            async_dispatcher_send(self.hass, bay_signal(self.entry_id, bay_id))
