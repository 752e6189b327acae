"""An account's bays: a runner per bay, and where a newly paid session goes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping
from functools import partial
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util

from .bay_runner import BayRunner, BaySettings, stored_or_retried
from .books import Books
from .catalog import Bay, Plan
from .const import DOMAIN, LATE_PAYMENT_S, LOGGER
from .drivers import make_driver
from .ending_rules import Ending
from .endings import Endings
from .ledger import Ledger
from .notices import Notices
from .records import PaymentRecord, SessionRecord, SessionState
from .refunds import Failure, Refunds
from .session_rules import NOT_POWERED, PAID_ONLY, PAID_TOO_LATE, PaidOutcome
from .site_gate import bay_gates, gates_by_site
from .sites import PriceBand, Site, Zones


class Bays:
    """Every bay of one account."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        *,
        configs: dict[str, Bay],
        books: Books,
        refunds: Refunds,
        notices: Notices,
        settings: BaySettings,
        sites: Mapping[str, Site],
        zones: Zones,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.configs = configs
        self.books = books
        self.notices = notices
        self.settings = settings
        self.runners: dict[str, BayRunner] = {}
        self.endings = Endings(books=books, refunds=refunds, notices=notices)
        self.sites = sites
        # Each site's gate (a site without bays too), and each bay's.
        self.site_gates = gates_by_site(sites, configs, zones)
        self.gates = bay_gates(self.site_gates)

    def name(self, bay_id: str) -> str:
        """A bay's name (its id once it was removed)."""
        return bay.name if (bay := self.configs.get(bay_id)) is not None else bay_id

    def config(self, bay_id: str) -> Bay:
        """A bay's settings, or a clear error."""
        if (bay := self.configs.get(bay_id)) is None:
            raise _unknown_bay(bay_id)
        return bay

    def band(self, bay_id: str, plan: Plan, now: float) -> PriceBand | None:
        """The price band of a sale of ``plan`` at the bay at ``now``, by its site's clock.

        A bay whose site is gone (no gate) goes by Home Assistant's time zone.
        """
        gate = self.gates.get(bay_id)
        return plan.band_at(gate.tz if gate else dt_util.get_default_time_zone(), now)

    def as_sold(self, bay_id: str, plan: Plan, now: float) -> Plan:
        """The plan as sold at the bay at ``now``: its prices in the band of that moment."""
        return plan.in_band(self.band(bay_id, plan, now))

    def metered(self, bay_id: str) -> bool:
        """Whether a bay can count energy now (its agent names a meter for it, say)."""
        return (runner := self.runners.get(bay_id)) is not None and runner.driver.metered

    def runner(self, bay_id: str) -> BayRunner:
        """The runner of a bay, or a clear error."""
        if (runner := self.runners.get(bay_id)) is None:
            raise _unknown_bay(bay_id)
        return runner

    async def async_setup(self) -> None:
        """Start a runner per bay; each resumes what the ledger says its bay was doing.

        The bays start together: each may wait (bounded) for its bay's retained state, and
        N bays wait that bound once, not N times.
        """
        for bay in self.configs.values():
            runner = BayRunner(
                self.hass,
                entry=self.entry,
                bay=bay,
                books=self.books,
                endings=self.endings,
                notices=self.notices,
                settings=self.settings,
                gate=self.gates.get(bay.bay_id),
                make_driver=partial(make_driver, self.hass, bay),
            )
            self.runners[bay.bay_id] = runner
        await asyncio.gather(*(runner.async_setup() for runner in self.runners.values()))
        for session in list(self.books.ledger.sessions.values()):
            if session.running and session.bay_id not in self.configs:
                await self._async_orphan(session)

    async def async_unload(self) -> None:
        """Stop every runner (sessions go on; the next setup resumes them).

        Under the books' lock: a change under way (a payment whose start or top-up is being
        stored with it) ends first and hands its session to its bay, whose ``on`` then goes
        out before the bay stops; else a stored top-up would never reach the bay.
        """
        async with self.books.lock:
            for runner in self.runners.values():
                await runner.async_unload()
            self.runners.clear()

    def power_now(
        self,
        ledger: Ledger,
        session: SessionRecord,
        payment: PaymentRecord,
        now: float,
    ) -> PaidOutcome | None:
        """In the change that opened a paid session: start or top up its bay at once.

        Returns the outcome to hand over once the change is stored, or None (the change is
        left as it was) when the bay's runner decides later: a payment it refuses or that is
        too late, a bay reloading, removed, or whose availability is not known yet.
        """
        if _too_late(payment, now):
            return None
        if (runner := self.runners.get(session.bay_id)) is None:
            return None
        return runner.power_now(ledger, session, now)

    @callback
    def hand_over(
        self,
        session: SessionRecord,
        payment: PaymentRecord,
        refused: Failure | None = None,
        powered: PaidOutcome | None = None,
    ) -> None:
        """Give a newly paid session to its bay, or fail it when it cannot be served.

        ``refused``: the payment bought nothing (a static QR code's amount out of bounds, ...),
        and the session failed in the stored change for that reason with these refunds to send;
        ``powered`` a start or top-up already stored (``power_now``): its bay sends ``on``.
        """
        job: Coroutine[Any, Any, Any]
        runner = self.runners.get(session.bay_id)
        if powered is not None and runner is None:
            # Unloaded since the commit: the next setup resumes the starting session.
            LOGGER.debug("Bay %s is reloading; %s resumes at its setup", session.bay_id, session)
            return
        if powered is not None and runner is not None:
            job = runner.async_powered_by(powered)
        elif refused is not None:
            job = self.endings.async_tail(session, self._failure(refused.reason), refused)
        elif _too_late(payment, time.time()):
            # Known to us only now (a webhook or reconcile long after the payment): the
            # customer has most likely gone, so the money goes back instead of the power.
            job = self.endings.async_end(session, self._failure(PAID_TOO_LATE, PAID_ONLY))
        elif runner is not None:
            job = runner.async_handle_paid(session)
        elif session.bay_id not in self.configs:
            job = self._async_orphan(session)
        else:
            LOGGER.debug("Bay %s is reloading; %s starts at its setup", session.bay_id, session)
            return
        self.entry.async_create_task(
            self.hass, stored_or_retried(job), f"qr_charging {session.session_id}"
        )

    async def _async_orphan(self, session: SessionRecord) -> None:
        """A session for a bay that was removed.

        One that was powered goes on at the agent until its deadline (it keeps time itself), so
        it is ended, not refunded; one that never started cannot, so it is refunded.
        """
        if session.state is SessionState.ACTIVE:
            removed = Ending.end("bay_removed", send_off=False, announced=False)
            await self.endings.async_end(session, removed)
            return
        await self.endings.async_end(session, self._failure("unknown_bay", NOT_POWERED))

    def _failure(self, reason: str, states: frozenset[SessionState] = PAID_ONLY) -> Ending:
        """A failure with no bay to tell ``off``: its session never powered one."""
        return Ending.fail(
            reason, auto_refund=self.settings.auto_refund, states=states, send_off=False
        )


def _unknown_bay(bay_id: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="unknown_bay",
        translation_placeholders={"bay": bay_id},
    )


def _too_late(payment: PaymentRecord, now: float) -> bool:
    """Whether a payment reached us too long after it was made to start a session."""
    return now - (payment.paid_at or payment.received_at) > LATE_PAYMENT_S
