"""The demo's dashboard (a YAML dashboard of every bay) and its closing summary."""

from __future__ import annotations

import os
from typing import Any

import yaml

from .settings import (
    BAY_SETUP,
    BAYS,
    DASHBOARD,
    ENERGY_PLAN,
    METERED_BAY,
    NODE,
    OWNER_USERNAME,
    PLANS,
    RATE_PLAN,
    say,
)
from .stack import Stack


class Dashboard(Stack):
    """The stack, with the dashboard it writes and the summary it prints."""

    def write_dashboard(self) -> None:
        """A YAML dashboard with every bay's entities and its QR code, which opens its page."""
        lines = []
        for bay, name, _ in BAYS:
            links = self.links[bay]
            screen = f", [display]({links['display_url']})" if BAY_SETUP[bay][1] else ""
            lines.append(
                f"- **{name}**: [bay page]({links['page_url']}), "
                f"[poster]({links['poster_url']}){screen}"
            )
        cards: list[dict[str, Any]] = [
            {
                "type": "markdown",
                "content": (
                    "**QR Charging demo.** A customer scans a bay's QR code: it opens the bay's "
                    "public page (here, click the code). Bay 1 sells the fixed plans and a "
                    "per-minute plan; Bay 2 has a dynamic QR code on its display, so its page "
                    "sells only when opened from the current code, and a meter: it also sells "
                    "kWh, and a session there ends when the (simulated) vehicle is full, with "
                    "the unused energy refunded. Tap *Pay*, then "
                    "**Pay (test)** on the Razorpay stand-in's checkout: the session page counts "
                    f"down. Stand-in: [dashboard]({self.standin_url}/), "
                    f"[refunds]({self.standin_url}/refunds).\n\n" + "\n".join(lines)
                ),
            }
        ]
        rows = (
            ("status", "Status"),
            ("charging", "Charging"),
            ("session_end", "Ends"),
            ("revenue", "Revenue"),
            ("sessions", "Sessions"),
            ("agent", "Agent"),
        )
        meter_rows = (
            ("power", "Power"),
            ("session_energy", "Session energy"),
            ("energy_sold", "Energy sold"),
        )
        for bay, name, _ in BAYS:
            ids = self.entities[bay]
            dynamic = BAY_SETUP[bay][1]
            cards.append(
                {
                    "type": "horizontal-stack",
                    "cards": [
                        {
                            "type": "entities",
                            "title": f"{name}: {'dynamic QR' if dynamic else 'scan to pay'}",
                            "show_header_toggle": False,
                            "entities": [
                                {"entity": ids[key], "name": label}
                                for key, label in rows + (meter_rows if bay == METERED_BAY else ())
                            ],
                        },
                        {
                            # Square and whole (never cropped), no caption over it: a QR
                            # code must stay scannable. A click does what a scan does: the
                            # bay's page (for the dynamic code, its display with the code).
                            "type": "picture-entity",
                            "entity": ids["payment_qr"],
                            "show_name": False,
                            "show_state": False,
                            "aspect_ratio": "1",
                            "fit_mode": "contain",
                            "tap_action": {
                                "action": "url",
                                "url_path": self.links[bay][
                                    "display_url" if dynamic else "page_url"
                                ],
                            },
                        },
                    ],
                }
            )
        (self.ha_dir / "qr_charging_dashboard.yaml").write_text(
            yaml.safe_dump(
                {
                    "title": "QR Charging",
                    "views": [{"title": "Bays", "path": "bays", "cards": cards}],
                },
                sort_keys=False,
                allow_unicode=True,
            ),
            encoding="utf-8",
        )

    # -- the summary --------------------------------------------------------------------------

    def summary(self) -> None:
        """What runs where, the login, the customer's addresses, how to stop."""
        ha, standin = self.ha_url, self.standin_url
        token = self.dir / "owner-token"
        code, _, rate, fewest, most = RATE_PLAN
        plans = ", ".join(f"{c} = {n} for ₹{r}" for c, n, _, r in PLANS)
        plans += f", {code} = ₹{rate} a minute ({fewest} to {most} minutes, the customer chooses)"
        code, _, price, low, high, cap = ENERGY_PLAN
        plans += (
            f", {code} = ₹{price} a kWh (₹{low} to ₹{high}, the customer chooses; at most {cap}"
            " minutes; the unused energy is refunded)"
        )
        bays = ""
        for bay, bay_name, _ in BAYS:
            links, (sells, dynamic) = self.links[bay], BAY_SETUP[bay]
            qr = "dynamic QR code on its display" if dynamic else "printed QR code"
            if bay == METERED_BAY:
                qr += "; metered (mock meter)"
            bays += (
                f"\n  {bay_name} ({bay}: plans {', '.join(sells)}; {qr})\n"
                f"    bay page   {links['page_url']}\n"
                f"    poster     {links['poster_url']}\n"
                f"    display    {links['display_url']}\n"
            )
        say(
            f"""
QR Charging demo is running (everything on 127.0.0.1; logs in {self.logs}/)

  Home Assistant      {ha}/{DASHBOARD}/bays
                      login: {OWNER_USERNAME} / {self.state["owner_password"]}
  Razorpay stand-in   {standin}/  (links, payments, webhook deliveries)
                      refunds: {standin}/refunds
  MQTT broker         127.0.0.1:{self.ports["broker"]} ({self.state["broker"]})
  relay agent         pi-mqtt-relay --mock-gpio, node {NODE}: {
                ", ".join(f"{b} on GPIO {p}" for b, _, p in BAYS)
            }

Plans: {plans}.

The customer's side: each bay's public page (what its QR code opens), its printable poster
and its display (the screen at the bay; the address is secret, it needs no login):
{bays}
A customer's way: scan the bay's QR code (on a computer, click it on the dashboard), choose
a plan on the bay page and tap Pay; press "Pay (test)" on the stand-in's checkout, then
"Back to the merchant": the session page counts down while the bay's relay is on. Bay 2
sells only to the code on its display (its bay page alone says to scan the screen). Bay 2's
meter is the agent's mock: per kWh, the session page shows the energy and the power, and
after about 20 s the simulated vehicle is full: the bay goes off and the unused energy is
refunded (the stand-in's refunds page shows it).

The owner can also make a link with the qr_charging.create_payment_link action, e.g. over
HA's REST API with the owner's token:
  curl -s -X POST -H "Authorization: Bearer $(cat {token})" \\
    -H "Content-Type: application/json" -d '{{"bay": "bay-1", "plan": "p1"}}' \\
    "{ha}/api/services/qr_charging/create_payment_link?return_response"

Stop: Ctrl-C here (or kill -TERM {os.getpid()}); every part stops with it.
"""
        )
