"""Builders of sites for the tests: a site subentry as its form stores it."""

from __future__ import annotations

from typing import Any

from custom_components.qr_charging.const import SUBENTRY_SITE
from custom_components.qr_charging.sites import make_site, site_to_data

# A shop's hours, as its form takes them: split on weekdays, closed on Sunday.
SHOP_HOURS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "08:00-13:00, 14:00-21:00") | {
    "sat": "10:00-18:00",
    "sun": "",
}


def site_subentry(site_id: str, name: str, **site: Any) -> dict[str, Any]:
    """A site subentry (``site``: ``make_site``'s keywords, e.g. ``load_cap_w``)."""
    return {
        "data": site_to_data(make_site(site_id, name, **site)),
        "subentry_type": SUBENTRY_SITE,
        "title": name,
        "unique_id": site_id,
    }


def hours_section(**days: str) -> dict[str, Any]:
    """The site form's opening hours section: the shop's hours with ``days`` changed."""
    return {"opening_hours": SHOP_HOURS | days}
