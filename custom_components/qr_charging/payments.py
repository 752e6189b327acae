"""Money coming in: payment links out, webhook events in, each matched to what was sold.

A delivery is applied to the books as one change and stored before anything else happens;
only then are events fired and a new session handed to its bay. When the bay's availability is
known and it can take the session (a start, or a top-up of the running one), that is decided
in the same change (``Bays.power_now``): one commit stores the payment and the power it buys,
and ``on`` is sent after it. Anything else is decided by the bay afterwards, in its own change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from homeassistant.exceptions import ServiceValidationError
from homeassistant.util.ulid import ulid_now

from .account_api import AccountApi
from .bays import Bays
from .books import Books
from .catalog import (
    CURRENCY,
    Bay,
    Plan,
    Quote,
    paise_to_rupees,
)
from .const import (
    DOMAIN,
    EVENT_PAYMENT_RECEIVED,
    EVENT_PAYMENT_UNMATCHED,
    LOGGER,
)
from .holds import LINK_MARGIN_S
from .ledger import Ledger, Wanted
from .notices import Notices
from .payment_rules import (
    Outcome,
    PaymentResult,
    Settlement,
    apply_payment,
    apply_refund,
    settlement,
)
from .qr_codes import QrCodes
from .quotes import check_site, quote_for
from .razorpay_api import RazorpayError
from .razorpay_events import PaymentNotice, WebhookEvent, link_notes
from .records import LinkRecord, RefundRecord
from .refunds import Failure, Refunds, refused_for_good
from .session_rules import PaidOutcome
from .sites import PriceBand
from .static_qr import static_sale


@dataclass(frozen=True, slots=True)
class CreatedLink:
    """A payment link ready to show to a customer."""

    link: LinkRecord

    def as_response(self) -> dict[str, Any]:
        """Response data of the ``create_payment_link`` action."""
        return {
            "url": self.link.short_url,
            "id": self.link.link_id,
            "session_id": self.link.reference_id,
            "bay": self.link.bay_id,
            "plan": self.link.plan_code,
            "amount": self.link.amount,
            "currency": self.link.currency,
            "expire_by": datetime.fromtimestamp(self.link.expire_by, UTC).isoformat(),
        }


def _sold_now(
    bays: Bays, bay_id: str, base: Plan, now: float, *, minutes: int | None, paise: int | None
) -> tuple[Plan, Quote, PriceBand | None]:
    """A purchase as sold now: priced in the band of this moment.

    The link's amount, and what it buys, is fixed by it; a per-kWh sale's time cap is cut to
    its site's closing (as the page offers it).
    """
    band = bays.band(bay_id, base, now)
    plan = base.in_band(band)
    metered = bays.metered(bay_id)
    quote = quote_for(plan, minutes=minutes, amount_paise=paise, metered=metered, bay=bay_id)
    if quote.energy_wh and (gate := bays.gates.get(bay_id)) is not None:
        quote = replace(quote, minutes=max(gate.sale_limit_s(quote.seconds, now) // 60, 1))
    return plan, quote, band


class Payments:
    """One account's payment links and incoming payments."""

    def __init__(  # the parts a payment passes through
        self,
        *,
        books: Books,
        api: AccountApi,
        notices: Notices,
        bays: Bays,
        refunds: Refunds,
        plans: dict[str, Plan],
        qr_codes: QrCodes,
    ) -> None:
        self.books = books
        self.api = api
        self.notices = notices
        self.bays = bays
        self.refunds = refunds
        self.plans = plans
        self.qr_codes = qr_codes

    # -- links out -----------------------------------------------------------------------------

    def plan_for(self, bay_id: str, plan_code: str | None) -> tuple[Bay, Plan]:
        """Check that a bay offers a plan (its first one when none is named)."""
        bay = self.bays.config(bay_id)
        code = plan_code or bay.plan_codes[0]
        if code not in bay.plan_codes or code not in self.plans:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_plan",
                translation_placeholders={"bay": bay_id, "plan": code},
            )
        return bay, self.plans[code]

    async def async_create_link(
        self,
        bay_id: str,
        plan_code: str | None,
        *,
        minutes: int | None = None,
        paise: int | None = None,
        intent: str | None = None,
        callback: Callable[[str], str] | None = None,
        hold_s: int | None = None,
        site_checked: bool = False,
    ) -> CreatedLink:
        """Create a Razorpay payment link that pays for one session of a bay.

        ``minutes`` is what the customer chose of a rate plan, ``paise`` the amount of a
        per-kWh plan (priced here, never by the client), ``intent`` what the page told them
        (``intents``), and ``callback`` gives the page Razorpay sends them back to, for the
        link's session id. ``hold_s`` is how long the link holds the bay when less than the
        bay's hold time (``holds.HoldGuard``). ``site_checked``: the pages' desk decided the
        site's refusal under the bay's lock; else the bay's site is asked (``check_site``).
        """
        bay, base = self.plan_for(bay_id, plan_code)
        session_id, now = f"s-{ulid_now()}", time.time()
        plan, quote, band = _sold_now(self.bays, bay_id, base, now, minutes=minutes, paise=paise)
        if not site_checked:
            check_site(self.bays, self.books.ledger, bay_id, quote, now)
        # The link's lifetime is the bay's hold time (a page's link holds the bay: ``holds``),
        # and a minute more: Razorpay refuses a link that expires sooner than 15 minutes after
        # the request reaches it, by its own clock.
        hold = bay.hold_minutes * 60 if hold_s is None else hold_s
        expire_by = int(now) + hold + LINK_MARGIN_S
        created = await self.api.run(
            self.api.client.create_payment_link,
            amount=quote.price_paise,
            currency=CURRENCY,
            reference_id=session_id,
            description=f"{plan.name}, {bay.name}",
            notes=link_notes(bay.bay_id, plan.code, session_id, band),
            expire_by=expire_by,
            callback_url=callback(session_id) if callback else None,
        )
        link = LinkRecord(
            link_id=created["id"],
            reference_id=session_id,
            bay_id=bay.bay_id,
            plan_code=plan.code,
            amount=quote.price_paise,
            currency=CURRENCY,
            seconds=quote.seconds,
            energy_wh=quote.energy_wh,
            price_per_kwh_paise=plan.price_per_kwh_paise if quote.energy_wh else 0,
            expire_by=int(created.get("expire_by") or expire_by),
            created_at=now,
            short_url=created["short_url"],
            intent=intent,
            band=band.percent if band is not None else 100,
        )
        async with self.books.change() as ledger:
            ledger.add_link(link)
        return CreatedLink(link)

    async def async_cancel_link(self, link: LinkRecord) -> str:
        """Close an unpaid link (its hold ends); return the status it ended with.

        A link past its expiry is closed here as expired, with no call to Razorpay. Otherwise
        Razorpay cancels it first; when Razorpay refuses (paid, expired or cancelled there
        meanwhile) the link is settled by what Razorpay says of it (``async_settle_link``),
        so asking again costs no call. When Razorpay cannot be reached, ``RazorpayError`` is
        raised and nothing changes here.
        """
        if link.expire_by <= time.time():
            status = "expired"
        else:
            try:
                remote = await self.api.run(self.api.client.cancel_payment_link, link.link_id)
            except RazorpayError as err:
                if not refused_for_good(err):
                    raise
                remote = await self.api.run(self.api.client.fetch_payment_link, link.link_id)
                await self.async_settle_link(link, remote)
                return str(remote.get("status"))
            status = str(remote.get("status") or "cancelled")
        async with self.books.change(Wanted(link_ids={link.link_id})) as ledger:
            ledger.close_link(link.link_id, status)
        return status

    async def async_settle_link(self, link: LinkRecord, remote: dict[str, Any]) -> list[str]:
        """Apply what Razorpay says of one of our links: closed, or paid (its payments).

        Returns what each captured payment found did (as ``async_handle_event`` says).
        """
        status = remote.get("status")
        if status in ("expired", "cancelled"):
            async with self.books.change(Wanted(link_ids={link.link_id})) as ledger:
                ledger.close_link(link.link_id, str(status))
        outcomes: list[str] = []
        if status != "paid":
            return outcomes
        for paid in remote.get("payments") or []:
            if paid.get("status") != "captured":
                continue
            notice = PaymentNotice(
                payment_id=paid["payment_id"],
                amount=int(paid["amount"]),
                currency=link.currency,
                status="captured",
                method=paid.get("method"),
                link_id=link.link_id,
                created_at=paid.get("created_at"),
            )
            outcomes.append(
                await self.async_handle_event(
                    f"reconcile:{notice.payment_id}",
                    WebhookEvent("reconcile", None, payment=notice),
                )
            )
        return outcomes

    # -- webhook events in ---------------------------------------------------------------------

    async def async_handle_event(self, event_id: str, event: WebhookEvent) -> str:
        """Apply one verified delivery, store it, then tell the others.

        Returns what the delivery did, for the log and the response body. Raises
        ``StorageError`` with nothing changed when the change cannot be stored.
        """
        if event.payment is not None:
            wanted = Wanted.for_payment(event.payment, event_id)
        elif event.refund is not None:
            wanted = Wanted.for_refund(event.refund, event_id)
        else:
            wanted = Wanted(event_ids={event_id}, link_ids={event.link_id or ""})
        result: PaymentResult | None = None
        powered: PaidOutcome | None = None
        refused: Failure | None = None
        settled: tuple[RefundRecord, Settlement] | None = None
        qr_sale = (
            static_sale(
                event.payment,
                self.bays.configs,
                self.plans,
                f"s-{ulid_now()}",
                self.qr_codes.known,
                # Priced in the band of the moment it was paid (Razorpay's clock).
                as_sold=partial(self.bays.as_sold, now=event.payment.created_at or time.time()),
            )
            if event.payment is not None
            else None
        )
        problem = qr_sale.problem if qr_sale is not None else None
        async with self.books.change(wanted) as ledger:
            if ledger.seen_event(event_id):
                return "duplicate_delivery"
            outcome = "ignored"
            now = time.time()
            if event.payment is not None:
                sale = qr_sale.sale if qr_sale is not None else None
                result = apply_payment(ledger, event.payment, event.event, now, sale)
                outcome = result.outcome.value
                powered, refused = self._decide_now(ledger, result, problem, now)
            elif event.refund is not None:
                refund, changed = apply_refund(ledger, event.refund)
                outcome = f"refund_{refund.state.value}" if refund else "refund_not_ours"
                if refund is not None and changed:
                    settled = refund, settlement(ledger, refund.payment_id)
            elif event.link_id is not None and event.link_status:
                changed = ledger.close_link(event.link_id, event.link_status)
                outcome = f"link_{event.link_status}" if changed else "ignored"
            ledger.note_event(event_id, event.event, outcome, now)
        if result is not None:
            self._announce(result, powered, refused)
        if settled is not None:
            self.refunds.settled(*settled)
        return outcome

    def _decide_now(
        self, ledger: Ledger, result: PaymentResult, problem: str | None, now: float
    ) -> tuple[PaidOutcome | None, Failure | None]:
        """In the change of a payment that opened a session: what is decided with it.

        A static QR code's payment that buys nothing (``problem``) fails, its refund recorded,
        so one commit stores the money and its way back (a restart cannot find the session
        paid and start it). Otherwise the bay is started (or topped up) when it can take it:
        one commit stores the payment and the power it buys, then "on" is sent.
        """
        if result.outcome is not Outcome.NEW_SESSION or result.session is None:
            return None, None
        if problem is not None:
            return None, self.refunds.refuse(ledger, result.session, problem)
        return self.bays.power_now(ledger, result.session, result.payment, now), None

    async def async_note_unusable(self, event_id: str, reason: str) -> str:
        """Record a genuine delivery we cannot read, so it is answered once and kept."""
        async with self.books.change(Wanted(event_ids={event_id})) as ledger:
            if ledger.seen_event(event_id):
                return "duplicate_delivery"
            ledger.note_event(event_id, "unreadable", reason, time.time())
        return "unusable"

    def _announce(
        self,
        result: PaymentResult,
        powered: PaidOutcome | None = None,
        refused: Failure | None = None,
    ) -> None:
        """Fire events, raise repairs and hand new sessions to the bays.

        ``refused``: a static QR code payment bought nothing, its session failed in the stored
        change (why, and its refunds to send).
        ``powered``: the session was started (or topped up) in the stored change.
        """
        payment = result.payment
        if result.outcome is Outcome.NEW_SESSION and result.session is not None:
            # Matched after all: a later event tied it to its link (a QR code payment whose
            # payment.captured came before its qr_code.credited). No longer unmatched.
            self.notices.clear_repair(f"payment_unmatched_{payment.payment_id}")
            self.notices.fire(
                EVENT_PAYMENT_RECEIVED,
                {
                    "bay": payment.bay_id,
                    "plan": payment.plan_code,
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "payment_id": payment.payment_id,
                    "session_id": result.session.session_id,
                },
            )
            self.bays.hand_over(result.session, payment, refused=refused, powered=powered)
        elif result.outcome is Outcome.UNMATCHED:
            # Money with no bay to serve it: the owner keeps or refunds it, and must be told.
            LOGGER.warning("Payment %s matches no link of ours", payment.payment_id)
            self.notices.raise_repair(
                f"payment_unmatched_{payment.payment_id}",
                "payment_unmatched",
                {"payment_id": payment.payment_id, "amount": str(paise_to_rupees(payment.amount))},
            )
            self.notices.fire(
                EVENT_PAYMENT_UNMATCHED,
                {
                    "payment_id": payment.payment_id,
                    "amount": payment.amount,
                    "currency": payment.currency,
                },
            )
        elif result.outcome is Outcome.MISMATCH:
            LOGGER.warning(
                "Payment %s does not match what was sold: %s", payment.payment_id, payment.problem
            )
            self.notices.raise_repair(
                f"payment_attention_{payment.payment_id}",
                "payment_attention",
                {
                    "payment_id": payment.payment_id,
                    "problem": payment.problem or "",
                    "bay": payment.bay_id or "",
                },
            )
            self.notices.session_failed(
                payment.bay_id,
                result.link.reference_id if result.link else None,
                [payment.payment_id],
                "payment_mismatch",
                payment.problem,
            )
