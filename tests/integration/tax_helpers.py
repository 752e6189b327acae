"""Builders of the owner's tax details and customers' GSTINs (plain data, no HA import).

The unit tests build from these too, so this module imports nothing from HA.
"""

from __future__ import annotations

from typing import Any

from custom_components.qr_charging.tax import check_character

# A supplier in Karnataka (29), business customers there and in Maharashtra (27).
OWNER_PAN = "ABCDE1234F"
CUSTOMER_PAN = "AAPFU0939F"
OWNER_NAME = "Volt Bays Private Limited"


def gstin(state: str = "29", pan: str = OWNER_PAN, entity: str = "1") -> str:
    """A valid GSTIN: state code, PAN, entity number, "Z", and its check character."""
    first14 = f"{state}{pan}{entity}Z"
    return first14 + check_character(first14)


OWNER_GSTIN = gstin("29")
KARNATAKA_CUSTOMER = gstin("29", CUSTOMER_PAN)
MAHARASHTRA_CUSTOMER = gstin("27", CUSTOMER_PAN)


def tax_options(
    gstin_: str = OWNER_GSTIN, *, rate: str = "18", prefix: str = "INV", sac: str = "999799"
) -> dict[str, Any]:
    """``options["tax"]`` of an owner registered for GST (confirmed), as the form stores it.

    An empty ``gstin_``: an owner who issues receipts.
    """
    return {
        "legal_name": OWNER_NAME,
        "gstin": gstin_,
        "state": gstin_[:2],
        "sac": sac,
        "rate": rate,
        "confirmed": True,
        "prefix": prefix,
    }
