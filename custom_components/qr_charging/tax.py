"""India's GST as the documents need it: GSTINs, states, the tax in a price, the year's series.

Plain Python, no Home Assistant imports. Prices are what the customer pays, tax included; a
document splits out its taxable value and tax in whole paise. What the law asks the owner to
choose (the SAC code, the rate) is the owner's: ``TaxSettings`` holds it, nothing here assumes
a rate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

# GST's state codes (the first two characters of a GSTIN; "place of supply" on a document).
STATES: dict[str, str] = {
    "01": "Jammu and Kashmir", "02": "Himachal Pradesh", "03": "Punjab", "04": "Chandigarh",
    "05": "Uttarakhand", "06": "Haryana", "07": "Delhi", "08": "Rajasthan",
    "09": "Uttar Pradesh", "10": "Bihar", "11": "Sikkim", "12": "Arunachal Pradesh",
    "13": "Nagaland", "14": "Manipur", "15": "Mizoram", "16": "Tripura", "17": "Meghalaya",
    "18": "Assam", "19": "West Bengal", "20": "Jharkhand", "21": "Odisha",
    "22": "Chhattisgarh", "23": "Madhya Pradesh", "24": "Gujarat",
    "26": "Dadra and Nagar Haveli and Daman and Diu", "27": "Maharashtra",
    "29": "Karnataka", "30": "Goa", "31": "Lakshadweep", "32": "Kerala", "33": "Tamil Nadu",
    "34": "Puducherry", "35": "Andaman and Nicobar Islands", "36": "Telangana",
    "37": "Andhra Pradesh", "38": "Ladakh", "97": "Other Territory",
}  # fmt: skip
# The rates GST has (percent, as the owner picks one); stored in basis points (18 % = 1800).
RATES = ("0", "0.25", "3", "5", "12", "18", "28", "40")
# Offered in the form for the owner to confirm: charging a vehicle is a service taxed at 18 %.
SUGGESTED_RATE = "18"
SUGGESTED_SAC = "999799"

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_GSTIN = re.compile(r"[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z][A-Z0-9][0-9A-Z]")
_SAC = re.compile(r"99[0-9]{2}(?:[0-9]{2})?")
_PREFIX = re.compile(r"[A-Z0-9]{1,4}")
# Rule 46(b): at most 16 characters of letters, digits, "-" and "/".
NUMBER_MAX = 16
# The financial year and a document's date are India's (UTC+05:30, no daylight saving).
IST = timezone(timedelta(hours=5, minutes=30), "IST")
NAME_MAX = 100
_JOINERS = str.maketrans("", "", "\u200c\u200d")
# What a spreadsheet reads as the start of a formula (the CSV injection of OWASP's list).
_FORMULA_MARKS = ("=", "+", "-", "@")
ADDRESS_MAX = 200


class TaxError(ValueError):
    """Bad tax details; ``key`` is the form's error key, ``field`` the field."""

    def __init__(self, field: str, key: str) -> None:
        super().__init__(f"{field}: {key}")
        self.field = field
        self.key = key


def check_character(first14: str) -> str:
    """The GSTIN's 15th character: a base-36 Luhn sum of the first 14 (GSTN's algorithm)."""
    total = 0
    for index, char in enumerate(first14):
        product = _ALPHABET.index(char) * (2 if index % 2 else 1)
        total += product // 36 + product % 36
    return _ALPHABET[(36 - total % 36) % 36]


def parse_gstin(field: str, text: str) -> str:
    """A GSTIN as typed → its canonical form (upper case, no spaces); bad input: ``TaxError``.

    Lower case is read as upper case (phones type it); the format, the state code and the check
    character must hold.
    """
    gstin = "".join(text.split()).upper()
    if len(gstin) != 15 or not _GSTIN.fullmatch(gstin) or gstin[:2] not in STATES:
        raise TaxError(field, "gstin_format")
    if check_character(gstin[:14]) != gstin[14]:
        raise TaxError(field, "gstin_check")
    return gstin


def parse_text(
    field: str, text: str, limit: int, *, required: bool = True, to_csv: bool = False
) -> str:
    """A name or address typed by a person: one line, printable, at most ``limit`` characters.

    The zero-width joiner and non-joiner are allowed: Devanagari spelling uses them. A value
    of joiners or marks only names nothing (``required``: it needs a letter or digit).
    ``to_csv``: the tax export's CSV files carry it (a customer's name) to a spreadsheet,
    which would run a value starting with ``=``, ``+``, ``-`` or ``@`` as a formula: such a
    value is ``not_printable`` (tabs and line breaks are folded to spaces, the ends trimmed
    and joiners ignored first).
    """
    value = " ".join(text.split())
    if required and not value:
        raise TaxError(field, "required")
    if len(value) > limit:
        raise TaxError(field, "too_long")
    visible = value.translate(_JOINERS)
    if (to_csv and visible.startswith(_FORMULA_MARKS)) or not visible.isprintable():
        raise TaxError(field, "not_printable")
    if value and not any(char.isalnum() for char in value):
        raise TaxError(field, "required")
    return value


def parse_rate(field: str, text: str) -> int:
    """A GST rate as offered (``"18"``) → basis points (1800)."""
    if text not in RATES:
        raise TaxError(field, "rate_unknown")
    whole, _, part = text.partition(".")
    return int(whole) * 100 + int((part + "00")[:2])


def rate_text(rate_bp: int) -> str:
    """Basis points → the percent as printed (``1800`` → ``"18"``, ``25`` → ``"0.25"``)."""
    whole, part = divmod(rate_bp, 100)
    return f"{whole}.{part:02d}".rstrip("0").rstrip(".") if part else str(whole)


@dataclass(frozen=True, slots=True)
class Recipient:
    """A registered customer, as they typed it (checked): who a B2B invoice is made out to."""

    gstin: str
    name: str
    address: str = ""

    @property
    def state(self) -> str:
        """Their state code: the place of supply of a service to a registered person."""
        return self.gstin[:2]


def parse_recipient(gstin: str, name: str, address: str) -> Recipient:
    """A customer's GSTIN, name and address as typed → a ``Recipient``; bad input: ``TaxError``.

    All three are required: Rule 46(d) puts the recipient's name, address and GSTIN on a tax
    invoice to a registered person.
    """
    return Recipient(
        parse_gstin("gstin", gstin),
        parse_text("name", name, NAME_MAX, to_csv=True),
        parse_text("address", address, ADDRESS_MAX, to_csv=True),
    )


@dataclass(frozen=True, slots=True)
class TaxSettings:
    """The owner's tax details (account options). Without a GSTIN: receipts, no tax."""

    legal_name: str = ""
    gstin: str = ""
    sac: str = ""
    rate_bp: int = 0
    prefix: str = "INV"
    # The principal place of business as registered: Rule 46(a)'s supplier's address.
    address: str = ""

    @property
    def registered(self) -> bool:
        """Whether documents are tax invoices (a GSTIN is set) or receipts."""
        return bool(self.gstin)

    @property
    def state(self) -> str:
        """The state of registration (the GSTIN's first two characters); "" without one."""
        return self.gstin[:2]


# Option keys of the tax section (``options["tax"]``).
LEGAL_NAME = "legal_name"
ADDRESS = "address"
GSTIN = "gstin"
STATE = "state"
SAC = "sac"
RATE = "rate"
CONFIRMED = "confirmed"
PREFIX = "prefix"


def parse_settings(data: dict[str, Any]) -> TaxSettings:
    """The tax section of the options form → ``TaxSettings``; bad input: ``TaxError``.

    Without a GSTIN only the legal name and prefix count (receipts). With one: the address as
    registered (an invoice prints the supplier's address), the state picked must be the
    GSTIN's, the SAC code 4 or 6 digits of a service (99…), a rate from ``RATES``, and the
    owner must have confirmed that code and rate (no rate is assumed silently).
    """
    prefix = str(data.get(PREFIX) or "INV").strip().upper()
    if not _PREFIX.fullmatch(prefix):
        raise TaxError(PREFIX, "prefix_invalid")
    legal_name = parse_text(LEGAL_NAME, str(data.get(LEGAL_NAME) or ""), NAME_MAX, required=False)
    registered = bool(str(data.get(GSTIN) or "").strip())
    try:
        address = parse_text(
            ADDRESS, str(data.get(ADDRESS) or ""), ADDRESS_MAX, required=registered
        )
    except TaxError as err:
        # The form's errors are the section's: each key names its field.
        raise TaxError(ADDRESS, f"address_{err.key}") from None
    if not registered:
        return TaxSettings(legal_name=legal_name, prefix=prefix, address=address)
    gstin = parse_gstin(GSTIN, str(data[GSTIN]))
    if not legal_name:
        raise TaxError(LEGAL_NAME, "required")
    if str(data.get(STATE) or "") != gstin[:2]:
        raise TaxError(STATE, "state_not_gstin")
    sac = str(data.get(SAC) or "").strip()
    if not _SAC.fullmatch(sac):
        raise TaxError(SAC, "sac_invalid")
    rate_bp = parse_rate(RATE, str(data.get(RATE) or ""))
    if data.get(CONFIRMED) is not True:
        raise TaxError(CONFIRMED, "not_confirmed")
    return TaxSettings(legal_name, gstin, sac, rate_bp, prefix, address)


def read_settings(options: Mapping[str, Any]) -> tuple[TaxSettings, TaxError | None]:
    """The stored tax section (checked by the form), and why it is not in force, if it is not.

    None stored: receipts only. Stored by an older form or edited by hand so that it no longer
    passes the form's checks: receipts too, until the owner fixes the form, and the reason.
    """
    data = options.get("tax")
    if not isinstance(data, dict):
        return TaxSettings(), None
    try:
        return parse_settings(data), None
    except TaxError as err:
        return TaxSettings(), err


def settings_of(options: Mapping[str, Any]) -> TaxSettings:
    """The tax details in force (``read_settings`` without the reason)."""
    return read_settings(options)[0]


@dataclass(frozen=True, slots=True)
class Split:
    """A price with its tax split out, whole paise: ``taxable + cgst + sgst + igst == total``."""

    total: int
    taxable: int
    cgst: int = 0
    sgst: int = 0
    igst: int = 0

    @property
    def tax(self) -> int:
        """All the tax in it."""
        return self.cgst + self.sgst + self.igst


def taxable_of(total: int, rate_bp: int) -> int:
    """The taxable value in a tax-inclusive price, to the nearest paisa (half a paisa up).

    That is total * 100 / (100 + rate).
    """
    denominator = 10_000 + rate_bp
    return (total * 20_000 + denominator) // (2 * denominator)


def split(total: int, rate_bp: int, inter_state: bool) -> Split:
    """Split a tax-inclusive price (paise) into its taxable value and tax.

    The taxable value is rounded to the nearest paisa, the tax is the rest; within a state
    CGST is half the tax rounded down and SGST the other half (the odd paisa); between states
    all of it is IGST.
    """
    taxable = taxable_of(total, rate_bp)
    tax = total - taxable
    if inter_state:
        return Split(total, taxable, igst=tax)
    return Split(total, taxable, cgst=tax // 2, sgst=tax - tax // 2)


def credit_split(credited_before: int, amount: int, rate_bp: int, inter_state: bool) -> Split:
    """The split of a credit of ``amount`` after ``credited_before`` of the same invoice.

    Taken as the difference of the cumulative splits, so the credits of an invoice add up to
    its own split to the paisa when it is credited whole.
    """
    after = split(credited_before + amount, rate_bp, inter_state)
    before = split(credited_before, rate_bp, inter_state)
    return Split(
        amount,
        after.taxable - before.taxable,
        after.cgst - before.cgst,
        after.sgst - before.sgst,
        after.igst - before.igst,
    )


def financial_year(at: float) -> str:
    """India's financial year (April to March) of a moment, as four digits: ``"2627"``."""
    day = datetime.fromtimestamp(at, UTC).astimezone(IST)
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start % 100:02d}{(start + 1) % 100:02d}"


class DocumentKind(StrEnum):
    """What a document is; each has its own consecutive series per financial year."""

    INVOICE = "invoice"  # a tax invoice (the owner has a GSTIN)
    CREDIT_NOTE = "credit_note"  # a tax invoice's credit (Rule 53)
    RECEIPT = "receipt"  # a payment's receipt (no GSTIN: no tax)
    REFUND_NOTE = "refund_note"  # a receipt's refund


# The series' mark in a number, after the year: the invoices' own series has none.
_MARKS = {
    DocumentKind.INVOICE: "",
    DocumentKind.CREDIT_NOTE: "C",
    DocumentKind.RECEIPT: "R",
    DocumentKind.REFUND_NOTE: "F",
}


# The documents Rules 46 and 53 govern (their numbers at most ``NUMBER_MAX`` characters).
_TAX_DOCUMENTS = frozenset({DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE})


def series_of(kind: DocumentKind, year: str) -> str:
    """The series a document's serial counts in: one per kind and financial year."""
    return f"{kind.value}/{year}"


def document_number(prefix: str, kind: DocumentKind, year: str, serial: int) -> str:
    """``INV/2627/123`` (an invoice), ``INV/2627/C7`` (a credit note): Rule 46(b)'s number.

    A tax invoice's or credit note's number past 16 characters raises ``ValueError`` (a
    4-character prefix leaves 999,999 invoices and 99,999 credit notes a year). Receipts and
    refund notes are no tax documents: Rule 46 does not hold them to 16 characters, and a busy
    owner without a GSTIN must not find payments refused at the 100,000th receipt of a year.
    """
    number = f"{prefix}/{year}/{_MARKS[kind]}{serial}"
    if kind in _TAX_DOCUMENTS and len(number) > NUMBER_MAX:
        raise ValueError(f"document number {number} is longer than {NUMBER_MAX} characters")
    return number


def place_of_supply(settings: TaxSettings, recipient: Recipient | None) -> str:
    """The state code a supply is taxed in.

    A registered recipient's state (IGST Act 12(2)(a)), else the supplier's own (its sites are
    in the state of its GSTIN).
    """
    return recipient.state if recipient is not None else settings.state
