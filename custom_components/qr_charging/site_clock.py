"""Each site of an account at run time: its opening and closing on HA's clock, its load.

A timer waits for a site's next opening or closing (``SiteGate.next_edge``); at the edge the
site's event fires (``qr_charging_site_opened`` / ``qr_charging_site_closed``), its entities
are told, and the next edge is timed. A site open around the clock has no edge, so no timer
and no event. Timers are made at setup (so a reload times them anew) and cancelled at unload.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time

from .bay_runner import BayRunner
from .const import CONF_SITE_ID, EVENT_SITE_CLOSED, EVENT_SITE_OPENED, SUBENTRY_SITE
from .ledger import Ledger
from .notices import Notices, bay_signal, site_signal
from .site_gate import SiteGate
from .sites import DEFAULT_SITE_ID, Site, default_site, site_from_data


def sites_of(entry: ConfigEntry) -> dict[str, Site]:
    """The sites configured as subentries of an entry (the default one until migrated)."""
    sites = {
        sub.data[CONF_SITE_ID]: site_from_data(sub.data)
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_SITE
    }
    return sites or {DEFAULT_SITE_ID: default_site()}


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()


@callback
def track_next_edge(
    hass: HomeAssistant,
    gate: SiteGate,
    now: float,
    action: HassJob[[datetime], None] | Callable[[datetime], None],
) -> CALLBACK_TYPE | None:
    """Call ``action`` at the site's next opening or closing, always after ``now``.

    None: the site has no edge (open around the clock, or closed for good): no timer. A timer
    at or before ``now`` would fire at once and, timed again from the same moment, spin.
    """
    if (edge := gate.next_edge(now)) is None or edge <= now:
        return None
    return async_track_point_in_utc_time(hass, action, datetime.fromtimestamp(edge, UTC))


class SiteClock:
    """One site: its edges on HA's clock, and what its bays draw now."""

    def __init__(
        self,
        hass: HomeAssistant,
        gate: SiteGate,
        *,
        notices: Notices,
        ledger: Callable[[], Ledger],
        runners: Mapping[str, BayRunner],
    ) -> None:
        self.hass = hass
        self.gate = gate
        self.site = gate.site
        self.notices = notices
        self._ledger = ledger
        self._runners = runners  # the account's (filled and emptied by ``Bays``)
        self.signal = site_signal(notices.entry_id, gate.site.site_id)
        # What its entities listen to: the site's edges and each of its bays' changes.
        self.signals = (self.signal, *(bay_signal(notices.entry_id, b) for b in gate.rated_w))
        self._unsub: CALLBACK_TYPE | None = None

    def is_open(self, now: float) -> bool:
        """Whether the site sells now."""
        return self.gate.is_open(now)

    def powered_bays(self) -> int:
        """How many of the site's bays are powered or being powered."""
        return len(self.gate.powered(self._ledger()))

    def power_in_use_w(self) -> int:
        """The rated power (W) of the site's powered bays: what its load cap counts."""
        return self.gate.powered_w(self._ledger())

    def metered_runners(self) -> list[BayRunner]:
        """The site's bays that may count energy (an agent's, a switch bay with a meter)."""
        return [r for b in self.gate.rated_w if (r := self._runners.get(b)) and r.bay.may_meter]

    def measured_w(self) -> float | None:
        """The power (W) the site's metered bays measure now (None: none measures)."""
        readings = [
            r.driver.power_w
            for r in self.metered_runners()
            if r.driver.metered and r.driver.power_w is not None
        ]
        return sum(readings) if readings else None

    @callback
    def start(self, now: float) -> None:
        """Time the next edge after ``now``."""
        self.stop()
        self._unsub = track_next_edge(self.hass, self.gate, now, self._at_edge)

    @callback
    def stop(self) -> None:
        """Cancel the timer."""
        if self._unsub is not None:
            self._unsub()
            self._unsub = None

    @callback
    def _at_edge(self, when: datetime) -> None:
        self._unsub = None
        now = when.timestamp()
        opened = self.gate.is_open(now)
        self.notices.fire(
            EVENT_SITE_OPENED if opened else EVENT_SITE_CLOSED,
            {
                "site_id": self.site.site_id,
                "name": self.site.name,
                "opens_at": _iso(self.gate.opens_at(now)),
                "closes_at": _iso(self.gate.closes_at(now)),
            },
        )
        async_dispatcher_send(self.hass, self.signal)
        self.start(now)
