"""Which documents are issued: a payment's invoice or receipt, a refund's credit note, B2B.

A payment's invoice (or receipt), a refund's credit note (or refund note), a business
customer's invoice in place of the one made out to no one.

Plain Python, no Home Assistant imports. A change of the books says what is due (``SaleDue``,
``RefundDue``); the store turns each into a ``Document`` here, with the documents already
issued for the same payment read in the same transaction, and numbers it there
(``store_documents``): a number is never issued twice nor skipped. A document is never edited:
a refund credits it, a B2B request credits the rest of it and issues a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from .catalog import Bay, Plan
from .records import (
    LinkRecord,
    PaymentRecord,
    PaymentState,
    Record,
    RefundRecord,
    RefundState,
)
from .sites import Site
from .tax import (
    DocumentKind,
    Recipient,
    Split,
    TaxSettings,
    credit_split,
    financial_year,
    place_of_supply,
    split,
)

# A refund Razorpay has taken: its money is on the way back (or back), so it is credited.
TAKEN_REFUNDS = frozenset({RefundState.PENDING, RefundState.PROCESSED})
# What issued a document (``Document.cause`` starts with one of these).
PAYMENT_CAUSE = "payment:"
REFUND_CAUSE = "refund:"
B2B_CAUSE = "b2b:"
B2B_CREDIT_CAUSE = "b2b-credit:"
SALES = frozenset({DocumentKind.INVOICE, DocumentKind.RECEIPT})
CREDITS = {
    DocumentKind.INVOICE: DocumentKind.CREDIT_NOTE,
    DocumentKind.RECEIPT: DocumentKind.REFUND_NOTE,
}


@dataclass(frozen=True, slots=True)
class Sold:
    """What a payment bought, as a document prints it (names as they were at the sale)."""

    bay_id: str
    bay_name: str
    site_name: str = ""
    site_address: str = ""
    plan_name: str = ""
    seconds: int = 0
    energy_wh: int = 0
    # The price band's percent of the plan's price (100: the plan's own price).
    band: int = 100


@dataclass(frozen=True, slots=True)
class Document:
    """An issued invoice, receipt, credit note or refund note, as stored (never edited).

    ``cause`` says what issued it and is unique: a document is issued once per cause
    (``payment:<id>``, ``refund:<key>``, ``b2b:<invoice number>`` and ``b2b-credit:<…>``).
    ``number`` and ``serial`` are given by the store in the transaction that stores it.
    """

    kind: DocumentKind
    cause: str
    issued_at: float
    payment_id: str
    session_id: str
    sold: Sold
    amounts: Split
    rate_bp: int = 0
    place_of_supply: str = ""
    sac: str = ""
    supplier_name: str = ""
    supplier_gstin: str = ""
    recipient: Recipient | None = None
    # The supplier's address as registered (with a GSTIN; the site's is ``sold.site_address``).
    supplier_address: str = ""
    # A credit note's or refund note's invoice (or receipt), by number.
    against: str | None = None
    number: str = ""
    serial: int = 0

    @property
    def inter_state(self) -> bool:
        """Taxed as IGST: supplied to another state than the supplier's."""
        return bool(self.supplier_gstin) and self.place_of_supply != self.supplier_gstin[:2]


@dataclass(frozen=True, slots=True)
class SaleDue:
    """A payment that opened (or topped up) a session: its invoice or receipt is due."""

    payment_id: str
    session_id: str
    amount: int
    # When we stored the payment: one stored before documents were issued gets none.
    received_at: float
    sold: Sold
    settings: TaxSettings


@dataclass(frozen=True, slots=True)
class RefundDue:
    """A refund Razorpay has taken (money going back): a credit of the payment's document is due.

    ``taken``: what Razorpay has taken of the payment's refunds in all (pending or processed,
    this one included), as the change's ledger has them. The credit is at most what that
    leaves uncredited: a refund taken (its note issued), then refused, then made again by the
    owner is the money of that note, not a second credit.
    """

    key: str
    payment_id: str
    amount: int
    taken: int


type Due = SaleDue | RefundDue


@dataclass(frozen=True, slots=True)
class Dues:
    """What one change makes due, with the prefix its numbers take and when it happened."""

    dues: tuple[Due, ...]
    prefix: str
    at: float


def sale(due: SaleDue, now: float) -> Document:
    """A payment's document: a B2C tax invoice with a GSTIN, else a receipt (no tax).

    The invoice is made out to no one in particular and taxed in the supplier's state.
    """
    settings = due.settings
    if not settings.registered:
        return Document(
            DocumentKind.RECEIPT,
            f"{PAYMENT_CAUSE}{due.payment_id}",
            now,
            due.payment_id,
            due.session_id,
            due.sold,
            Split(due.amount, due.amount),
            supplier_name=settings.legal_name,
        )
    return Document(
        DocumentKind.INVOICE,
        f"{PAYMENT_CAUSE}{due.payment_id}",
        now,
        due.payment_id,
        due.session_id,
        due.sold,
        split(due.amount, settings.rate_bp, inter_state=False),
        settings.rate_bp,
        place_of_supply(settings, None),
        settings.sac,
        settings.legal_name,
        settings.gstin,
        supplier_address=settings.address,
    )


def live_sale(documents: Iterable[Document]) -> Document | None:
    """A payment's document in force: its invoice or receipt that no B2B invoice replaced.

    A B2B invoice (cause ``b2b:<number>``) replaces the one made out to no one. Told by the
    cause, not by the time issued: a clock stepped back between the two must not leave the
    credited invoice in force (its refunds would then credit nothing).
    """
    docs = list(documents)
    replaced = {d.cause.removeprefix(B2B_CAUSE) for d in docs if d.cause.startswith(B2B_CAUSE)}
    return next((d for d in docs if d.kind in SALES and d.number not in replaced), None)


def credited(document: Document, documents: Iterable[Document]) -> int:
    """How much of a document its credit notes (or refund notes) have taken back."""
    return sum(d.amounts.total for d in documents if d.against == document.number)


def refunded(documents: Iterable[Document]) -> int:
    """What a payment's refunds have credited (its documents' ``refund:`` notes), in paise."""
    return sum(d.amounts.total for d in documents if d.cause.startswith(REFUND_CAUSE))


def _credit(
    sold_doc: Document, documents: list[Document], amount: int, cause: str, now: float
) -> Document | None:
    before = credited(sold_doc, documents)
    amount = min(amount, sold_doc.amounts.total - before)
    if amount <= 0:
        return None
    if sold_doc.kind is DocumentKind.RECEIPT:
        amounts = Split(amount, amount)
    else:
        amounts = credit_split(before, amount, sold_doc.rate_bp, sold_doc.inter_state)
    return replace(
        sold_doc,
        kind=CREDITS[sold_doc.kind],
        cause=cause,
        issued_at=now,
        amounts=amounts,
        against=sold_doc.number,
        number="",
        serial=0,
    )


def refund_credit(due: RefundDue, documents: list[Document], now: float) -> Document | None:
    """A refund's credit note (or refund note) against the payment's document in force.

    Of the refund's amount, at most what its payment's taken refunds (``due.taken``) leave
    after the refund notes issued so far, and at most what is left of that document. None
    when the payment has no document (paid before documents were issued, not ours) or
    nothing of it is left to credit.
    """
    sold_doc = live_sale(documents)
    if sold_doc is None:
        return None
    amount = min(due.amount, due.taken - refunded(documents))
    return _credit(sold_doc, documents, amount, f"{REFUND_CAUSE}{due.key}", now)


class B2BRefused(Exception):
    """Why a B2B invoice cannot be issued; ``reason`` is the page's text key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# How long a B2C invoice may be replaced by a B2B one: Rule 47's 30 days to issue a tax
# invoice for a supply of services.
B2B_DAYS = 30
_DAY_S = 86_400


def too_late(invoice: Document, now: float) -> bool:
    """Whether ``invoice`` is past replacing by a B2B invoice at ``now``.

    30 days after it was issued (Rule 47), or once its financial year has ended (that year's
    GSTR-1 and credit notes are closed to it).
    """
    if now - invoice.issued_at > B2B_DAYS * _DAY_S:
        return True
    return financial_year(now) != financial_year(invoice.issued_at)


def replaceable(of_payment: list[Document], now: float) -> Document | None:
    """A payment's B2C tax invoice a B2B request may replace at ``now``; None without one.

    In force, made out to no one, something of it left after credits, and not ``too_late``.
    The receipt page offers its form by this rule, and ``b2b`` issues by it.
    """
    sold_doc = live_sale(of_payment)
    if (
        sold_doc is None
        or sold_doc.kind is not DocumentKind.INVOICE
        or sold_doc.recipient is not None
        or credited(sold_doc, of_payment) >= sold_doc.amounts.total
        or too_late(sold_doc, now)
    ):
        return None
    return sold_doc


def b2b(
    documents: list[Document], recipient: Recipient, settings: TaxSettings, now: float
) -> list[Document]:
    """A business customer's invoices of the payments ``documents`` are of (the store: one).

    For each payment's ``replaceable`` B2C invoice, a credit note of its rest and a new
    invoice of it made out to them. Asked again with the same GSTIN: nothing more (the
    documents already issued stand). Raises ``B2BRefused``: ``not_registered`` (the owner
    issues receipts), ``own_gstin`` (the owner's own GSTIN), ``other_recipient`` (made out to
    another GSTIN already), ``too_late`` (the invoice is past 30 days or of a closed financial
    year), ``nothing`` (nothing left to invoice: refunded, or no payment).
    """
    if not settings.registered:
        raise B2BRefused("not_registered")
    if recipient.gstin == settings.gstin:
        raise B2BRefused("own_gstin")
    issued: list[Document] = []
    mine = late = False
    for payment_id in dict.fromkeys(d.payment_id for d in documents):
        of_payment = [d for d in documents if d.payment_id == payment_id]
        in_force = live_sale(of_payment)
        if in_force is not None and in_force.recipient is not None:
            if in_force.recipient.gstin != recipient.gstin:
                raise B2BRefused("other_recipient")
            mine = True
            continue
        sold_doc = replaceable(of_payment, now)
        if sold_doc is None:
            # Refused for its time alone: it was replaceable the moment it was issued.
            late |= in_force is not None and replaceable(of_payment, in_force.issued_at) is not None
            continue
        rest = sold_doc.amounts.total - credited(sold_doc, of_payment)
        note = _credit(sold_doc, of_payment, rest, f"{B2B_CREDIT_CAUSE}{sold_doc.number}", now)
        if note is None:
            continue
        pos = place_of_supply(settings, recipient)
        supplier_state = sold_doc.supplier_gstin[:2]
        invoice = replace(
            sold_doc,
            cause=f"{B2B_CAUSE}{sold_doc.number}",
            issued_at=now,
            amounts=split(rest, sold_doc.rate_bp, inter_state=pos != supplier_state),
            place_of_supply=pos,
            recipient=recipient,
            number="",
            serial=0,
        )
        issued += [note, invoice]
    if not issued and not mine:
        raise B2BRefused("too_late" if late else "nothing")
    return issued


# What a payment bought, named: given the payment and its link (None: a static QR code's).
type Describe = Callable[[PaymentRecord, LinkRecord | None], Sold]


def describer(bays: dict[str, Bay], plans: dict[str, Plan], sites: dict[str, Site]) -> Describe:
    """Name what a payment bought by the account's bays, plans and sites as they are now.

    A bay or plan removed since is named by its id or code.
    """

    def describe(payment: PaymentRecord, link: LinkRecord | None) -> Sold:
        bay_id = payment.bay_id or ""
        bay = bays.get(bay_id)
        site = sites.get(bay.site_id) if bay is not None else None
        plan = plans.get(payment.plan_code or "")
        return Sold(
            bay_id,
            bay.name if bay is not None else bay_id,
            site.name if site is not None else "",
            site.address if site is not None else "",
            plan.name if plan is not None else payment.plan_code or "",
            payment.seconds,
            payment.energy_wh,
            link.band if link is not None else 100,
        )

    return describe


def dues_of(
    written: Iterable[Record],
    links: dict[str, LinkRecord],
    describe: Describe,
    settings: TaxSettings,
    at: float,
    *,
    refunds: Mapping[str, RefundRecord],
) -> Dues | None:
    """What the records a change wrote make due in documents.

    A document for each payment that opened or topped up a session, a credit for each refund
    once Razorpay has taken it (pending or processed): one only recorded may yet be refused
    for good, and then the money stays with the owner; one kept as too small never goes back.
    Each is issued once: the store skips a cause already documented. ``refunds``: the change's
    ledger's (a payment's are all there), for what Razorpay has taken of each payment.
    """
    dues: list[Due] = []
    for record in written:
        if isinstance(record, PaymentRecord):
            if record.state is PaymentState.SESSION and record.session_id:
                link = links.get(record.link_id) if record.link_id else None
                dues.append(
                    SaleDue(
                        record.payment_id,
                        record.session_id,
                        record.amount,
                        record.received_at,
                        describe(record, link),
                        settings,
                    )
                )
        elif isinstance(record, RefundRecord) and record.state in TAKEN_REFUNDS:
            # Every taken refund of the payment, not only this one: one covered by an earlier
            # note of a refund Razorpay then refused gets its own once that one is paid after
            # all (the store skips those already noted; each is limited by what was taken).
            of_payment = [
                r
                for r in refunds.values()
                if r.payment_id == record.payment_id and r.state in TAKEN_REFUNDS
            ]
            taken = sum(r.amount for r in of_payment)
            # The written one first: what is left to credit is its own.
            first = [record, *(r for r in of_payment if r is not record)]
            dues += [RefundDue(r.key, r.payment_id, r.amount, taken) for r in first]
    return Dues(tuple(dict.fromkeys(dues)), settings.prefix, at) if dues else None
