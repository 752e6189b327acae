"""What happens to a session: start, acknowledgement, top-up, end, failure and refund shares.

Plain Python, no Home Assistant imports. Each rule changes the ledger's records in place and
returns what the caller must do outside (send a command, refund); time is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from .energy_rules import add_energy
from .holds import held_for_another
from .intents import may_top_up
from .ledger import Ledger
from .payment_rules import MIN_REFUND_PAISE, refundable
from .records import RefundState, SessionRecord, SessionState
from .site_gate import REFUSE_CLOSED, REFUSE_LOAD_CAP, SiteGate, paid_grace_s, refusal

# A paid session found still unstarted after a restart is started only this soon after payment;
# later, the customer has likely gone and it is refunded.
RESUME_PAID_WITHIN_S = 120
# Why a payment that reached Home Assistant long after it was made is refused.
PAID_TOO_LATE = "paid_too_late"
# Why a session ends when its paid time is up.
DEADLINE = "deadline"
# A session whose deadline is this close when the bay reports it off has simply run out; a
# report of power this much past the paid deadline claims time nobody paid for.
DEADLINE_SLACK_S = 2.0
# The states a session is ended or failed from (read again in the change that does it).
ACTIVE_ONLY = frozenset({SessionState.ACTIVE})
PAID_ONLY = frozenset({SessionState.PAID})
STARTING_ONLY = frozenset({SessionState.STARTING})
NOT_POWERED = frozenset({SessionState.PAID, SessionState.STARTING})


class PaidDecision(StrEnum):
    """What to do with a newly paid session."""

    START = "start"
    TOP_UP = "top_up"
    REFUSE_OFFLINE = "bay_offline"
    REFUSE_TOO_LONG = "over_limit"
    REFUSE_BUSY = "bay_busy"
    REFUSE_ENDING = "session_ending"
    # Energy sold for a bay that cannot count it (no meter now; the link was made before).
    REFUSE_NO_METER = "rejected_no_meter"
    # Its site (issue #25): closed, or no power left under its load cap.
    REFUSE_CLOSED = REFUSE_CLOSED
    REFUSE_LOAD_CAP = REFUSE_LOAD_CAP


@dataclass(frozen=True, slots=True)
class OnCommand:
    """Power a bay for a session until a deadline (a metered one: up to ``energy_wh``)."""

    session_id: str
    until: float
    duration: int
    sent: float
    energy_wh: float | None = None


def on_command(session: SessionRecord, now: float, duration: int | None = None) -> OnCommand:
    """The ``on`` that powers (or extends) a running session from now until its deadline.

    Its ``duration`` is what is left from now (a start's: its seconds): the agent checks that
    against its longest session, as ``decide_paid`` did with the same figure.
    """
    assert session.until is not None
    if duration is None:
        duration = math.ceil(session.until - now)
    energy = float(session.energy_paid_wh) if session.sells_energy else None
    return OnCommand(session.session_id, session.until, duration, now, energy)


def remaining_s(session: SessionRecord, now: float) -> float:
    """Seconds of powered time still owed to a session."""
    if session.state is SessionState.ACTIVE and session.until is not None:
        return max(session.until - now, 0.0)
    if session.state in (SessionState.PAID, SessionState.STARTING):
        return float(session.seconds)
    return 0.0


def decide_paid(
    running: SessionRecord | None,
    new: SessionRecord,
    *,
    online: bool,
    limit_s: int,
    now: float,
    margin_s: float,
    held: bool = False,
    metered: bool = False,
) -> PaidDecision:
    """Start, top up, or refuse (and so refund) a session that was just paid for.

    A top-up needs the bay online and more than ``margin_s`` left: the extension must reach the
    bay before its own deadline switches it off; and a payer who was told so (``intents``).
    ``held``: another customer holds the free bay while paying (``holds``); it is theirs.
    Energy (a per-kWh sale) needs a ``metered`` bay: never sold where it cannot be counted.
    """
    if not online or (new.sells_energy and not metered):
        return PaidDecision.REFUSE_OFFLINE if not online else PaidDecision.REFUSE_NO_METER
    if running is not None and running.session_id != new.session_id:
        if not may_top_up(new.intent, running.session_id):
            return PaidDecision.REFUSE_BUSY
        return _decide_top_up(running, new, limit_s=limit_s, now=now, margin_s=margin_s)
    if held:
        return PaidDecision.REFUSE_BUSY
    if new.seconds > limit_s:
        return PaidDecision.REFUSE_TOO_LONG
    return PaidDecision.START


@dataclass(frozen=True, slots=True)
class PaidOutcome:
    """What was decided for a paid session, and done to the ledger.

    ``session`` is the one that runs: the paid one (starting), the bay's running one it
    topped up, or the paid one still unserved when refused (``command`` is None then).
    """

    decision: PaidDecision
    session: SessionRecord
    command: OnCommand | None


def settle_paid(
    ledger: Ledger,
    session: SessionRecord,
    *,
    online: bool,
    limit_s: int,
    now: float,
    margin_s: float,
    metered: bool = False,
    gate: SiteGate | None = None,
) -> PaidOutcome:
    """Decide a paid session in a change of the books; a start or top-up is applied there.

    The one place a payment (or the owner) is given power: the webhook's change when the bay
    is known, and the bay's own change otherwise. A refusal changes nothing here (the caller
    fails and refunds the session in a change of its own). The bay's site (``gate``) refuses a
    sale while closed, one past closing (more than the time since its link was made,
    ``site_gate.paid_grace_s``: a link is sold to end by closing), and a start over its load cap;
    the owner's own sessions only the last.
    """
    running = ledger.running_session(session.bay_id, besides=session.session_id)
    if (
        gate is not None
        and (grace_s := paid_grace_s(session, ledger.link_by_reference(session.session_id), now))
        is not None
    ):
        # Sold to end by its site's closing when its link was made (none for a static QR).
        limit_s = gate.sale_limit_s(limit_s, now, grace_s=grace_s)
    decision = decide_paid(
        running,
        session,
        online=online,
        limit_s=limit_s,
        now=now,
        margin_s=margin_s,
        # The owner's own session is no payment: it may take a held bay.
        held=not session.owner
        and held_for_another(ledger.links.values(), session.bay_id, session.session_id, now),
        metered=metered,
    )
    starting = decision is PaidDecision.START
    if (starting or decision is PaidDecision.TOP_UP) and (
        why := refusal(gate, ledger, session, now, starting=starting)
    ):
        return PaidOutcome(PaidDecision(why), session, None)
    if decision is PaidDecision.START:
        return PaidOutcome(decision, session, begin(session, now))
    if decision is PaidDecision.TOP_UP:
        assert running is not None
        return PaidOutcome(decision, running, top_up(ledger, running, session, now))
    return PaidOutcome(decision, session, None)


def _decide_top_up(
    running: SessionRecord, new: SessionRecord, *, limit_s: int, now: float, margin_s: float
) -> PaidDecision:
    if running.state is not SessionState.ACTIVE or running.sells_energy != new.sells_energy:
        # Topping up a session still waiting for its acknowledgement would stack risks; time
        # and energy do not add up.
        return PaidDecision.REFUSE_BUSY
    left = remaining_s(running, now)
    if left <= margin_s:
        return PaidDecision.REFUSE_ENDING
    if left + new.seconds > limit_s:
        return PaidDecision.REFUSE_TOO_LONG
    return PaidDecision.TOP_UP


def begin(session: SessionRecord, now: float) -> OnCommand:
    """Mark a session starting and give the command that powers its bay."""
    session.state = SessionState.STARTING
    session.until = now + session.seconds
    return on_command(session, now, session.seconds)


def confirm(session: SessionRecord, now: float) -> bool:
    """The bay reports power for the session: it is active. Return whether that is news.

    The deadline stays the one HA commanded: a report never adds time, and one that ends
    earlier shows as the bay going off early (refunded then), not as time taken silently.
    """
    if session.state is not SessionState.STARTING:
        return False
    session.state = SessionState.ACTIVE
    session.started_at = now
    return True


def before_top_ups(
    ledger: Ledger, session: SessionRecord, until: float, slack: float
) -> float | None:
    """The deadline the session had before its newest top-up(s), if ``until`` is one of them.

    A bay that refuses a top-up keeps the deadline it had; any other earlier time is not a
    refusal of ours.
    """
    if session.until is None:
        return None
    earlier = session.until
    # The payments that topped the session up (an owner's session was opened by none).
    top_ups = session.payment_ids if session.owner else session.payment_ids[1:]
    for payment_id in reversed(top_ups):
        payment = ledger.payments.get(payment_id)
        if payment is None:
            return None
        earlier -= payment.seconds - payment.cut_s
        if abs(until - earlier) <= slack:
            return earlier
    return None


def top_up(ledger: Ledger, running: SessionRecord, new: SessionRecord, now: float) -> OnCommand:
    """Fold a new payment's session into the bay's running one; give the extending command."""
    assert running.until is not None
    add_energy(running, new)
    running.seconds += new.seconds
    running.paid_paise += new.paid_paise
    running.payment_ids.extend(new.payment_ids)
    running.until += new.seconds
    for payment_id in new.payment_ids:
        ledger.payments[payment_id].session_id = running.session_id
    del ledger.sessions[new.session_id]
    return on_command(running, now)


def shorten(ledger: Ledger, session: SessionRecord, until: float) -> list[tuple[str, int]]:
    """The bay will stop at ``until``, before the paid deadline: cut the session to it.

    Returns what to refund of the time cut off, per payment (see ``cut_unserved``): a refused
    top-up gives back exactly the payment that bought it.
    """
    assert session.until is not None
    cut = session.until - until
    if cut <= 0 or session.seconds <= 0:
        return []
    parts = cut_unserved(ledger, session, cut)
    session.seconds = max(session.seconds - math.ceil(cut), 0)
    session.until = until
    return parts


def cut_unserved(ledger: Ledger, session: SessionRecord, seconds: float) -> list[tuple[str, int]]:
    """Price ``seconds`` of a session's time that will not be served; return the refunds.

    Unserved time comes off the newest payment first, each at its own price (its paise for its
    seconds), rounded down and within what is left to refund of it; time no payment bought (an
    owner's free minutes) is never priced. Each payment keeps how much of it was cut.
    """
    parts: list[tuple[str, int]] = []
    left = seconds
    for payment_id in reversed(session.payment_ids):
        payment = ledger.payments.get(payment_id)
        if left <= 0 or payment is None or payment.seconds <= 0:
            continue
        portion = min(left, payment.seconds - payment.cut_s)
        if portion <= 0:
            continue
        left -= portion
        payment.cut_s += portion
        paise = min(
            math.floor(payment.amount * portion / payment.seconds), refundable(ledger, payment_id)
        )
        if paise > 0:
            parts.append((payment_id, paise))
    session.paid_paise -= sum(paise for _, paise in parts)
    return parts


def finish(session: SessionRecord, now: float, reason: str) -> None:
    """End a session that ran (deadline, stop, or found ended after a restart)."""
    session.state = SessionState.ENDED
    end = now if session.until is None else min(now, session.until)
    session.ended_at = end
    session.end_reason = reason


def fail(session: SessionRecord, now: float, reason: str) -> None:
    """A session that never powered its bay."""
    session.state = SessionState.FAILED
    session.ended_at = now
    session.end_reason = reason


def unserved_parts(ledger: Ledger, session: SessionRecord, now: float) -> list[tuple[str, int]]:
    """The refunds for the time not yet served, per payment (an early stop, a power cut)."""
    return cut_unserved(ledger, session, remaining_s(session, now))


def refundable_parts(ledger: Ledger, session: SessionRecord) -> list[tuple[str, int]]:
    """All that is left to refund of a session's payments, newest first."""
    parts = [(p, refundable(ledger, p)) for p in reversed(session.payment_ids)]
    return [(payment_id, paise) for payment_id, paise in parts if paise > 0]


def refundable_of(ledger: Ledger, session: SessionRecord) -> int:
    """What of a session's payments is not yet refunded."""
    return sum(refundable(ledger, p) for p in session.payment_ids)


def is_refunded(ledger: Ledger, session: SessionRecord) -> bool:
    """Whether every paisa of a failed session has been refunded (or is being)."""
    return bool(session.payment_ids) and refundable_of(ledger, session) == 0


def refund_owed(ledger: Ledger, session: SessionRecord) -> int:
    """Paise of a failed session the owner still owes its customer (automatic refund off).

    Nothing under ₹1: Razorpay refunds no less, so that is kept (``too_small``) and owed by
    nobody.
    """
    if session.state is not SessionState.FAILED:
        return 0
    owed = refundable_of(ledger, session)
    return owed if owed >= MIN_REFUND_PAISE else 0


def still_owed(ledger: Ledger) -> list[tuple[str, int]]:
    """Money the account owes back, per (payment, paise).

    Refunds Razorpay has not accepted yet, and what failed sessions owe (``refund_owed``).
    """
    owed = [
        (refund.payment_id, refund.amount)
        for refund in ledger.refunds.values()
        if refund.state is RefundState.REQUESTED
    ]
    for session in ledger.sessions.values():
        if refund_owed(ledger, session):
            owed += refundable_parts(ledger, session)
    return owed


def mark_refunded(ledger: Ledger, session: SessionRecord) -> None:
    """A failed session whose payments are refunded in full (or being) becomes refunded."""
    if session.state is SessionState.FAILED and is_refunded(ledger, session):
        session.state = SessionState.REFUNDED


class Resume(StrEnum):
    """What a bay's setup does with a session the ledger says is running."""

    END = "end"  # powered, and its deadline passed while HA was down
    DEADLINE = "deadline"  # powered: arm its deadline
    ACK = "ack"  # unknown whether "on" got through: the bay's retained state will tell
    START = "start"  # paid just before the restart: start it, or top up the one running
    INTERRUPTED = "interrupted"  # anything else cannot run any more: it fails


def resume(session: SessionRecord, *, first: bool, now: float) -> Resume:
    """How a bay's running session goes on after a restart (``first``: the bay's oldest)."""
    if first and session.state is SessionState.ACTIVE and session.until is not None:
        return Resume.END if session.until <= now else Resume.DEADLINE
    if first and session.state is SessionState.STARTING:
        return Resume.ACK
    if session.state is SessionState.PAID and now - session.created_at < RESUME_PAID_WITHIN_S:
        return Resume.START
    return Resume.INTERRUPTED


def deadline_ahead(session: SessionRecord, now: float) -> bool:
    """Whether the session's deadline is still ahead: a top-up moved it since it was armed."""
    return session.until is not None and session.until - now > DEADLINE_SLACK_S
