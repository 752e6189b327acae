"""Plans and bays: what is sold and where. Plain Python, no Home Assistant imports."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,32}")
# Razorpay refuses payment links under one rupee.
MIN_PRICE_PAISE = 100
MAX_PLAN_MINUTES = 24 * 60
CURRENCY = "INR"


class CatalogError(ValueError):
    """A plan or bay is invalid; ``key`` names the translated error, ``field`` the input."""

    def __init__(self, field: str, key: str) -> None:
        super().__init__(f"{field}: {key}")
        self.field = field
        self.key = key


@dataclass(frozen=True, slots=True)
class Plan:
    """A price for a length of time."""

    code: str
    name: str
    minutes: int
    price_paise: int

    @property
    def seconds(self) -> int:
        """Powered time the plan buys."""
        return self.minutes * 60


@dataclass(frozen=True, slots=True)
class Bay:
    """A socket a customer pays for."""

    bay_id: str
    name: str
    plan_codes: tuple[str, ...]


def rupees_to_paise(rupees: float | str | Decimal) -> int:
    """Convert a price entered in rupees to integer paise, refusing fractions of a paisa."""
    try:
        value = Decimal(str(rupees))
    except InvalidOperation as err:
        raise CatalogError("price", "invalid_price") from err
    paise = value * 100
    if paise != paise.to_integral_value():
        raise CatalogError("price", "invalid_price")
    return int(paise)


def paise_to_rupees(paise: int) -> Decimal:
    """Format-friendly rupees for integer paise."""
    return Decimal(paise) / 100


def check_id(field: str, value: str, taken: Iterable[str]) -> str:
    """Return ``value`` when it is a well-formed, unused id."""
    if not ID_PATTERN.fullmatch(value):
        raise CatalogError(field, "invalid_id")
    if value in set(taken):
        raise CatalogError(field, "duplicate_id")
    return value


def make_plan(code: str, name: str, minutes: int, price_paise: int) -> Plan:
    """Validate and build a plan (the id is checked by the caller against its siblings)."""
    if not ID_PATTERN.fullmatch(code):
        raise CatalogError("code", "invalid_id")
    if minutes <= 0 or minutes > MAX_PLAN_MINUTES:
        raise CatalogError("minutes", "invalid_minutes")
    if price_paise <= 0:
        raise CatalogError("price", "invalid_price")
    if price_paise < MIN_PRICE_PAISE:
        raise CatalogError("price", "price_below_minimum")
    return Plan(code=code, name=name.strip() or code, minutes=minutes, price_paise=price_paise)


def make_bay(bay_id: str, name: str, plan_codes: Iterable[str], known_plans: Iterable[str]) -> Bay:
    """Validate and build a bay that offers some of the known plans."""
    if not ID_PATTERN.fullmatch(bay_id):
        raise CatalogError("bay_id", "invalid_id")
    codes = tuple(dict.fromkeys(plan_codes))
    if not codes:
        raise CatalogError("plans", "no_plans_selected")
    if not set(codes) <= set(known_plans):
        raise CatalogError("plans", "unknown_plan")
    return Bay(bay_id=bay_id, name=name.strip() or bay_id, plan_codes=codes)
