"""Builders of the tax options' tests: GSTINs that pass their check, the form's tax section."""

from __future__ import annotations

from typing import Any

from custom_components.qr_charging.tax import check_character

# A Karnataka (29) and a Maharashtra (27) GSTIN, each with its right check character.
GSTIN_KA = "29ABCDE1234F1Z" + check_character("29ABCDE1234F1Z")
GSTIN_MH = "27ABCDE1234F1Z" + check_character("27ABCDE1234F1Z")
# The Karnataka one with its check character one place along the alphabet: a typo it catches.
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
GSTIN_OFF_BY_ONE = GSTIN_KA[:14] + _ALPHABET[(_ALPHABET.index(GSTIN_KA[14]) + 1) % 36]
LEGAL_NAME = "Shakti EV Charging Pvt Ltd"


def tax_section(**changes: Any) -> dict[str, Any]:
    """The form's *Tax details* as a registered owner in Karnataka fills it in."""
    return {
        "legal_name": LEGAL_NAME,
        "gstin": GSTIN_KA,
        "state": "29",
        "sac": "999799",
        "rate": "18",
        "confirmed": True,
        "prefix": "INV",
    } | changes


def options_input(tax: dict[str, Any]) -> dict[str, Any]:
    """The whole options form: the bay settings as they default, and the tax section."""
    return {"ack_timeout": 20, "auto_refund": True, "tax": tax}


def form_section(result: Any, name: str) -> Any:
    """A form's section (``data_entry_flow.section``): its ``schema`` and ``options``."""
    (found,) = [value for key, value in result["data_schema"].schema.items() if key == name]
    return found
