"""What the owner asks of a bay (actions and the Charging switch): a free session, a stop."""

from __future__ import annotations

import time
from typing import Any

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util.ulid import ulid_now

from .bay_runner import BayRunner
from .const import DOMAIN
from .ending_rules import Ending, RefundMode
from .ledger import Ledger
from .records import SessionRecord, SessionState


async def async_start_owner(runner: BayRunner, minutes: int) -> SessionRecord:
    """A session the owner gives (no payment); the ledger marks it as such."""
    bay_id = runner.bay.bay_id
    if runner.session is not None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="bay_busy",
            translation_placeholders={"bay": bay_id},
        )
    if minutes * 60 > runner.limit_s:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="too_long",
            translation_placeholders={"bay": bay_id, "max": str(runner.limit_s // 60)},
        )
    if not runner.driver.online:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="bay_offline",
            translation_placeholders={"bay": bay_id},
        )
    session = SessionRecord(
        session_id=f"s-{ulid_now()}",
        bay_id=runner.bay.bay_id,
        state=SessionState.PAID,
        created_at=time.time(),
        seconds=minutes * 60,
        owner=True,
    )
    async with runner.books.change() as ledger:
        _check_load_cap(runner, ledger)
        ledger.sessions[session.session_id] = session
    await runner.async_handle_paid(session)
    return session


def _check_load_cap(runner: BayRunner, ledger: Ledger) -> None:
    """Refuse a start over the site's load cap (a cap is physical: the owner's too).

    Checked in the change that would store the session, so nothing is stored when refused.
    Opening hours are not checked: the owner's own sessions ignore them.
    """
    gate = runner.gate
    if gate is None or gate.fits(ledger, runner.bay.bay_id):
        return
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="over_load_cap",
        translation_placeholders={
            "bay": runner.bay.bay_id,
            "site": gate.site.name,
            "cap": str(gate.site.load_cap_w),
            "in_use": str(gate.powered_w(ledger)),
            "rated": str(runner.bay.rated_w),
        },
    )


async def async_stop(runner: BayRunner, mode: RefundMode) -> dict[str, Any]:
    """Stop the bay's session now, refunding none, the unserved share, or all of it."""
    session = runner.session
    if session is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="bay_idle",
            translation_placeholders={"bay": runner.bay.bay_id},
        )
    refunded: int | None = None
    if session.state is not SessionState.ACTIVE:
        refunded = await runner.async_end(session, Ending.stop(mode, powered=False))
    if refunded is None:  # powered, or acknowledged while the stop waited
        refunded = await runner.async_end(session, Ending.stop(mode, powered=True))
    return {
        "session_id": session.session_id,
        "refunded": refunded or 0,
        "state": session.state.value,
    }
