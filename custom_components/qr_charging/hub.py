"""The account hub: ledger, Razorpay calls and the rules that join them, for one config entry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, ParamSpec, TypeVar

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util.ulid import ulid_now

from .archive import ARCHIVE_AFTER_S, drop_archived, select_archivable, with_archive
from .bays import BayRunner
from .catalog import CURRENCY, Bay, Plan, bay_from_data
from .const import (
    CONF_ACK_TIMEOUT,
    CONF_API_BASE_URL,
    CONF_AUTO_REFUND,
    CONF_BAY_ID,
    CONF_CODE,
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_MINUTES,
    CONF_NAME,
    CONF_PRICE_PAISE,
    DEFAULT_ACK_TIMEOUT_S,
    DEFAULT_API_BASE_URL,
    DOMAIN,
    EVENT_PAYMENT_RECEIVED,
    EVENT_REFUND,
    EVENT_SESSION_FAILED,
    LATE_PAYMENT_S,
    LINK_LIFETIME_S,
    LOGGER,
    RECONCILE_WINDOW_S,
    REFUND_CHECK_AFTER_S,
    SUBENTRY_BAY,
    SUBENTRY_PLAN,
)
from .drivers import make_driver
from .ledger import (
    Ledger,
    LinkRecord,
    Outcome,
    PaymentRecord,
    PaymentResult,
    RefundRecord,
    RefundState,
    SessionRecord,
    SessionState,
)
from .ledger_file import LedgerFile
from .razorpay_api import (
    RazorpayApi,
    RazorpayAuthError,
    RazorpayConnectionError,
    RazorpayError,
    RazorpayRequestError,
)
from .razorpay_events import (
    NOTE_BAY,
    NOTE_PLAN,
    NOTE_SESSION,
    PaymentNotice,
    RefundNotice,
    WebhookEvent,
)
from .session_rules import fail, finish, mark_refunded, refund_plan, refundable_of

_P = ParamSpec("_P")
_T = TypeVar("_T")


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


def plans_of(entry: ConfigEntry) -> dict[str, Plan]:
    """The plans configured as subentries of an entry."""
    return {
        sub.data[CONF_CODE]: Plan(
            code=sub.data[CONF_CODE],
            name=sub.data[CONF_NAME],
            minutes=sub.data[CONF_MINUTES],
            price_paise=sub.data[CONF_PRICE_PAISE],
        )
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_PLAN
    }


def bays_of(entry: ConfigEntry) -> dict[str, Bay]:
    """The bays configured as subentries of an entry."""
    return {
        sub.data[CONF_BAY_ID]: bay_from_data(sub.data)
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_BAY
    }


def api_for(data: dict[str, Any] | Any) -> RazorpayApi:
    """A Razorpay client for config entry data (or flow input)."""
    return RazorpayApi(
        data[CONF_KEY_ID],
        data[CONF_KEY_SECRET],
        base_url=data.get(CONF_API_BASE_URL) or DEFAULT_API_BASE_URL,
    )


class QrChargingHub:
    """Everything one Razorpay account does; kept in ``entry.runtime_data``."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.api = api_for(entry.data)
        self.plans = plans_of(entry)
        self.bays = bays_of(entry)
        self.ledger = Ledger()
        self._file = LedgerFile(hass, entry.entry_id)
        # One lock for every change to the ledger: concurrent deliveries of one payment must
        # see each other's effect, and each answer waits until its change is on disk.
        self.lock = asyncio.Lock()
        self.ack_timeout_s: float = entry.options.get(CONF_ACK_TIMEOUT, DEFAULT_ACK_TIMEOUT_S)
        self.auto_refund: bool = entry.options.get(CONF_AUTO_REFUND, True)
        self.runners: dict[str, BayRunner] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def async_load(self) -> None:
        """Read the ledger from disk."""
        if (ledger := await self._file.async_load()) is not None:
            self.ledger = ledger

    async def async_save(self) -> None:
        """Write the ledger now (atomic rename), before anyone is told of the change."""
        await self._file.async_save(self.ledger)

    async def async_setup_bays(self) -> None:
        """Start a runner per bay; each resumes what the ledger says its bay was doing."""
        for bay in self.bays.values():
            runner = BayRunner(self, bay, partial(make_driver, self.hass, bay))
            self.runners[bay.bay_id] = runner
            await runner.async_setup()
        for session in list(self.ledger.sessions.values()):
            if session.running and session.bay_id not in self.bays:
                await self._async_orphan(session)

    async def async_unload_bays(self) -> None:
        """Stop every runner (sessions go on; the next setup resumes them)."""
        for runner in self.runners.values():
            await runner.async_unload()
        self.runners.clear()

    def runner(self, bay_id: str) -> BayRunner:
        """The runner of a bay, or a clear error."""
        if (runner := self.runners.get(bay_id)) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_bay",
                translation_placeholders={"bay": bay_id},
            )
        return runner

    async def _async_orphan(self, session: SessionRecord) -> None:
        """A session for a bay that was removed.

        One that was powered goes on at the agent until its deadline (it keeps time itself), so
        it is ended, not refunded; one that never started cannot, so it is refunded.
        """
        if session.state is SessionState.ACTIVE:
            async with self.lock:
                finish(session, time.time(), "bay_removed")
                await self.async_save()
            return
        await self.async_fail_session(session, "unknown_bay")

    async def async_fail_session(
        self, session: SessionRecord, reason: str, detail: str | None = None
    ) -> bool:
        """The one way a session fails: recorded, announced, refunded (by default), repaired.

        The refunds are recorded in the same save as the failure, so a crash between the two
        cannot leave money unrefunded; reconciliation sends any that were not sent.
        """
        async with self.lock:
            if not session.running:
                return False
            fail(session, time.time(), reason)
            refunds = (
                self.record_refunds(session, refundable_of(self.ledger, session), reason)
                if self.auto_refund
                else []
            )
            await self.async_save()
        self.fire_failed(session, reason, detail)
        await self.async_send_refunds(refunds)
        bay = self.bays.get(session.bay_id)
        self._raise_repair(
            f"start_failed_{session.bay_id}",
            "start_failed",
            {
                "bay": bay.name if bay else session.bay_id,
                "reason": reason,
                "session_id": session.session_id,
                "refund": "yes" if session.state is SessionState.REFUNDED else "no",
            },
        )
        return True

    @callback
    def _raise_repair(self, issue_id: str, key: str, placeholders: dict[str, str]) -> None:
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
    def fire_failed(self, session: SessionRecord, reason: str, detail: str | None = None) -> None:
        """Announce a session that will not (or no longer) run."""
        self._fire_failed(
            session.bay_id, session.session_id, list(session.payment_ids), reason, detail
        )

    @callback
    def _fire_failed(
        self,
        bay_id: str | None,
        session_id: str | None,
        payment_ids: list[str],
        reason: str,
        detail: str | None = None,
    ) -> None:
        self.hass.bus.async_fire(
            EVENT_SESSION_FAILED,
            {
                "entry_id": self.entry.entry_id,
                "bay": bay_id,
                "session_id": session_id,
                "payment_ids": payment_ids,
                "reason": reason,
                "detail": detail,
            },
        )

    def record_refunds(
        self, session: SessionRecord, amount: int, reason: str
    ) -> list[RefundRecord]:
        """Record refunds of ``amount`` over a session's payments, newest first (lock held)."""
        refunds = [
            self._new_refund(payment_id, part, reason, session.session_id)
            for payment_id, part in refund_plan(self.ledger, session, amount)
        ]
        mark_refunded(self.ledger, session)
        return refunds

    def _new_refund(
        self, payment_id: str, amount: int, reason: str, session_id: str | None
    ) -> RefundRecord:
        refund = RefundRecord(
            key=f"r-{ulid_now()}",
            payment_id=payment_id,
            amount=amount,
            created_at=time.time(),
            state=RefundState.REQUESTED,
            reason=reason,
            session_id=session_id,
        )
        self.ledger.add_refund(refund)
        return refund

    async def async_send_refunds(self, refunds: list[RefundRecord]) -> None:
        """Send refunds already recorded."""
        for refund in refunds:
            await self.async_send_refund(refund)

    # -- Razorpay calls ----------------------------------------------------------------------

    async def call(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a blocking Razorpay call in the executor and translate its errors."""
        try:
            return await self.hass.async_add_executor_job(lambda: func(*args, **kwargs))
        except RazorpayAuthError as err:
            self.entry.async_start_reauth(self.hass)
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except RazorpayConnectionError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="cannot_connect"
            ) from err
        except RazorpayError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="razorpay_refused",
                translation_placeholders={"error": str(err)},
            ) from err

    # -- payment links -----------------------------------------------------------------------

    def plan_for(self, bay_id: str, plan_code: str | None) -> tuple[Bay, Plan]:
        """Check that a bay offers a plan (its first one when none is named)."""
        bay = self.bays.get(bay_id)
        if bay is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_bay",
                translation_placeholders={"bay": bay_id},
            )
        code = plan_code or bay.plan_codes[0]
        if code not in bay.plan_codes or code not in self.plans:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_plan",
                translation_placeholders={"bay": bay_id, "plan": code},
            )
        return bay, self.plans[code]

    async def async_create_payment_link(self, bay_id: str, plan_code: str | None) -> CreatedLink:
        """Create a Razorpay payment link that pays for one session of a bay."""
        bay, plan = self.plan_for(bay_id, plan_code)
        session_id = f"s-{ulid_now()}"
        now = time.time()
        expire_by = int(now) + LINK_LIFETIME_S
        created = await self.call(
            self.api.create_payment_link,
            amount=plan.price_paise,
            currency=CURRENCY,
            reference_id=session_id,
            description=f"{plan.name}, {bay.name}",
            notes={NOTE_BAY: bay.bay_id, NOTE_PLAN: plan.code, NOTE_SESSION: session_id},
            expire_by=expire_by,
        )
        link = LinkRecord(
            link_id=created["id"],
            reference_id=session_id,
            bay_id=bay.bay_id,
            plan_code=plan.code,
            amount=plan.price_paise,
            currency=CURRENCY,
            seconds=plan.seconds,
            expire_by=int(created.get("expire_by") or expire_by),
            created_at=now,
            short_url=created["short_url"],
        )
        async with self.lock:
            self.ledger.add_link(link)
            await self.async_save()
        return CreatedLink(link)

    # -- webhook events ----------------------------------------------------------------------

    async def async_handle_event(self, event_id: str, event: WebhookEvent) -> str:
        """Apply one verified delivery to the ledger, persist it, then tell the others.

        Returns what the delivery did, for the log and the response body.
        """
        async with self.lock:
            if self.ledger.seen_event(event_id):
                return "duplicate_delivery"
            result: PaymentResult | None = None
            settled: RefundRecord | None = None
            outcome = "ignored"
            now = time.time()
            if event.payment is not None:
                result = self.ledger.apply_payment(event.payment, event.event, now)
                outcome = result.outcome.value
            elif event.refund is not None:
                refund, changed = self.ledger.apply_refund(event.refund)
                outcome = f"refund_{refund.state.value}" if refund else "refund_not_ours"
                settled = refund if changed else None
            elif event.link_id is not None and event.link_status:
                changed = self.ledger.close_link(event.link_id, event.link_status)
                outcome = f"link_{event.link_status}" if changed else "ignored"
            self.ledger.note_event(event_id, event.event, outcome, now)
            self.ledger.forget_old_events(now)
            await self.async_save()
        if result is not None:
            self._announce_payment(result)
        if settled is not None:
            self._refund_settled(settled)
        return outcome

    async def async_note_unusable(self, event_id: str, reason: str) -> str:
        """Record a genuine delivery we cannot read, so it is answered once and kept."""
        async with self.lock:
            if self.ledger.seen_event(event_id):
                return "duplicate_delivery"
            self.ledger.note_event(event_id, "unreadable", reason, time.time())
            await self.async_save()
        return "unusable"

    @callback
    def _hand_over(self, session: SessionRecord, payment: PaymentRecord) -> None:
        """Give a newly paid session to its bay, or fail it when it cannot be served."""
        paid_at = payment.paid_at or payment.received_at
        job: Coroutine[Any, Any, Any]
        if time.time() - paid_at > LATE_PAYMENT_S:
            # Known to us only now (a webhook or reconcile long after the payment): the
            # customer has most likely gone, so the money goes back instead of the power.
            job = self.async_fail_session(session, "paid_too_late")
        elif (runner := self.runners.get(session.bay_id)) is not None:
            job = runner.async_handle_paid(session)
        elif session.bay_id not in self.bays:
            job = self._async_orphan(session)
        else:
            LOGGER.debug("Bay %s is reloading; %s starts at its setup", session.bay_id, session)
            return
        self.entry.async_create_task(self.hass, job, f"qr_charging {session.session_id}")

    @callback
    def _announce_payment(self, result: PaymentResult) -> None:
        """Fire events, raise repairs and hand new sessions to the bays."""
        payment = result.payment
        if result.outcome is Outcome.NEW_SESSION and result.session is not None:
            self.hass.bus.async_fire(
                EVENT_PAYMENT_RECEIVED,
                {
                    "entry_id": self.entry.entry_id,
                    "bay": payment.bay_id,
                    "plan": payment.plan_code,
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "payment_id": payment.payment_id,
                    "session_id": result.session.session_id,
                },
            )
            self._hand_over(result.session, result.payment)
        elif result.outcome is Outcome.MISMATCH:
            LOGGER.warning(
                "Payment %s does not match what was sold: %s", payment.payment_id, payment.problem
            )
            self._raise_repair(
                f"payment_attention_{payment.payment_id}",
                "payment_attention",
                {
                    "payment_id": payment.payment_id,
                    "problem": payment.problem or "",
                    "bay": payment.bay_id or "",
                },
            )
            self._fire_failed(
                payment.bay_id,
                result.link.reference_id if result.link else None,
                [payment.payment_id],
                "payment_mismatch",
                payment.problem,
            )

    # -- refunds -----------------------------------------------------------------------------

    async def async_refund(self, payment_id: str, amount: int | None, reason: str) -> RefundRecord:
        """Refund (part of) a payment once: recorded first, keyed so a retry cannot repeat it."""
        async with self.lock:
            refundable = self.ledger.refundable(payment_id)
            if payment_id not in self.ledger.payments:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="unknown_payment",
                    translation_placeholders={"payment_id": payment_id},
                )
            amount = refundable if amount is None else amount
            if amount <= 0 or amount > refundable:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="invalid_refund_amount",
                    translation_placeholders={"amount": str(amount), "refundable": str(refundable)},
                )
            payment = self.ledger.payments[payment_id]
            refund = self._new_refund(payment_id, amount, reason, payment.session_id)
            if (session := self.ledger.sessions.get(payment.session_id or "")) is not None:
                # A failed session refunded by hand is refunded too, once nothing is left.
                mark_refunded(self.ledger, session)
            await self.async_save()
        await self.async_send_refund(refund)
        return refund

    async def async_send_refund(self, refund: RefundRecord) -> None:
        """Ask Razorpay for a recorded refund; a passing failure waits for the next reconcile."""
        try:
            answer = await self.call(
                self.api.refund,
                refund.payment_id,
                amount=refund.amount,
                idempotency_key=refund.key,
                notes={"reason": refund.reason, NOTE_SESSION: refund.session_id or ""},
            )
        except HomeAssistantError as err:
            if not _refused_for_good(err):
                LOGGER.warning(
                    "Refund %s of %s not sent yet: %s", refund.key, refund.payment_id, err
                )
                return
            async with self.lock:
                refund.state = RefundState.FAILED
                await self.async_save()
            self._refund_settled(refund, str(err.__cause__))
            return
        async with self.lock:
            refund.refund_id = answer.get("id")
            if refund.state is not RefundState.REQUESTED:
                # Its webhook came first and already settled it (and told of it).
                await self.async_save()
                return
            processed = answer.get("status") == "processed"
            refund.state = RefundState.PROCESSED if processed else RefundState.PENDING
            await self.async_save()
        self._refund_settled(refund)

    @callback
    def _refund_settled(self, refund: RefundRecord, problem: str | None = None) -> None:
        """Tell of a refund's new state; a failed one needs the owner, a full one ends attention."""
        if refund.state is RefundState.FAILED:
            self._raise_repair(
                f"refund_failed_{refund.key}",
                "refund_failed",
                {
                    "payment_id": refund.payment_id,
                    "amount": str(refund.amount),
                    "problem": problem or "refund.failed",
                },
            )
        elif self.ledger.refundable(refund.payment_id) == 0:
            ir.async_delete_issue(self.hass, DOMAIN, f"payment_attention_{refund.payment_id}")
        payment = self.ledger.payments.get(refund.payment_id)
        if payment is not None and (runner := self.runners.get(payment.bay_id or "")):
            runner.async_write()  # revenue changed
        self.hass.bus.async_fire(
            EVENT_REFUND,
            {
                "entry_id": self.entry.entry_id,
                "payment_id": refund.payment_id,
                "refund_id": refund.refund_id,
                "amount": refund.amount,
                "reason": refund.reason,
                "session_id": refund.session_id,
                "state": refund.state.value,
            },
        )

    # -- reconciliation ----------------------------------------------------------------------

    async def async_reconcile(self) -> None:
        """Catch what webhooks missed (paid links without a session, unsent refunds), archive."""
        now = time.time()
        for refund in [r for r in self.ledger.refunds.values() if r.state is RefundState.REQUESTED]:
            await self.async_send_refund(refund)
        for refund in [
            r
            for r in self.ledger.refunds.values()
            if r.state is RefundState.PENDING
            and r.refund_id
            and now - r.created_at > REFUND_CHECK_AFTER_S
        ]:
            await self._async_check_refund(refund)
        open_links = [
            link
            for link in self.ledger.links.values()
            if link.status == "created" and now - link.created_at < RECONCILE_WINDOW_S
        ]
        for link in open_links:
            try:
                remote = await self.call(self.api.fetch_payment_link, link.link_id)
            except HomeAssistantError as err:
                LOGGER.debug("Reconcile stopped at %s: %s", link.link_id, err)
                break
            await self._reconcile_link(link, remote, now)
        await self._async_archive(now)

    async def _async_check_refund(self, refund: RefundRecord) -> None:
        """Ask Razorpay how a pending refund went (its webhook may never have come)."""
        assert refund.refund_id is not None
        try:
            remote = await self.call(self.api.fetch_refund, refund.payment_id, refund.refund_id)
        except HomeAssistantError as err:
            LOGGER.debug("Refund %s not checked: %s", refund.refund_id, err)
            return
        notice = RefundNotice(
            refund.refund_id, refund.payment_id, refund.amount, str(remote.get("status"))
        )
        async with self.lock:
            _, changed = self.ledger.apply_refund(notice)
            if changed:
                await self.async_save()
        if changed:
            self._refund_settled(refund)

    async def _async_archive(self, now: float) -> None:
        """Move settled history out of the live ledger: archive first, then the smaller ledger.

        A crash between the two leaves the records in both; they are archived again later and
        an export counts each once.
        """
        async with self.lock:
            batch = select_archivable(self.ledger, now - ARCHIVE_AFTER_S)
            if batch is None:
                return
            try:
                await self._file.async_append_archive(batch)
            except OSError:
                LOGGER.exception("Could not write the archive; the records stay in the ledger")
                return
            drop_archived(self.ledger, batch)
            await self.async_save()
        LOGGER.debug("Archived %d sessions", len(batch["sessions"]))

    async def async_export(self) -> Ledger:
        """The archive and the live ledger together."""
        return with_archive(self.ledger, await self._file.async_load_archive())

    async def _reconcile_link(self, link: LinkRecord, remote: dict[str, Any], now: float) -> None:
        status = remote.get("status")
        if status in ("expired", "cancelled"):
            async with self.lock:
                self.ledger.close_link(link.link_id, str(status))
                await self.async_save()
            return
        if status != "paid":
            return
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
            await self.async_handle_event(
                f"reconcile:{notice.payment_id}",
                WebhookEvent("reconcile", None, payment=notice),
            )


type QrChargingConfigEntry = ConfigEntry[QrChargingHub]


def _refused_for_good(err: HomeAssistantError) -> bool:
    """Razorpay answered 4xx: retrying the same refund cannot succeed."""
    cause = err.__cause__
    return (
        isinstance(cause, RazorpayRequestError)
        and cause.status is not None
        and 400 <= cause.status < 500
    )
