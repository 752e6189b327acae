"""What the owner asks of a bay (actions and the Charging switch): a free session, a stop."""

from __future__ import annotations

import time
from typing import Any

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util.ulid import ulid_now

from .bay_runner import BayRunner
from .const import DOMAIN
from .ending_rules import Ending, RefundMode
from .ledger import SessionRecord, SessionState


def _refused(runner: BayRunner, key: str, **placeholders: str) -> dict[str, Any]:
    return {
        "translation_domain": DOMAIN,
        "translation_key": key,
        "translation_placeholders": {"bay": runner.bay.bay_id, **placeholders},
    }


async def async_start_owner(runner: BayRunner, minutes: int) -> SessionRecord:
    """A session the owner gives (no payment); the ledger marks it as such."""
    if runner.session is not None:
        raise ServiceValidationError(**_refused(runner, "bay_busy"))
    if minutes * 60 > runner.limit_s:
        raise ServiceValidationError(**_refused(runner, "too_long", max=str(runner.limit_s // 60)))
    if not runner.driver.online:
        raise HomeAssistantError(**_refused(runner, "bay_offline"))
    session = SessionRecord(
        session_id=f"s-{ulid_now()}",
        bay_id=runner.bay.bay_id,
        state=SessionState.PAID,
        created_at=time.time(),
        seconds=minutes * 60,
        owner=True,
    )
    async with runner.books.change() as ledger:
        ledger.sessions[session.session_id] = session
    await runner.async_handle_paid(session)
    return session


async def async_stop(runner: BayRunner, mode: RefundMode) -> dict[str, Any]:
    """Stop the bay's session now, refunding none, the unserved share, or all of it."""
    session = runner.session
    if session is None:
        raise ServiceValidationError(**_refused(runner, "bay_idle"))
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
