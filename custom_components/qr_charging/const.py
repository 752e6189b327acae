"""Constants of the qr_charging integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "qr_charging"
LOGGER = logging.getLogger(__package__)

# Config entry data (one entry per Razorpay account).
CONF_KEY_ID: Final = "key_id"
CONF_KEY_SECRET: Final = "key_secret"
CONF_WEBHOOK_SECRET: Final = "webhook_secret"
CONF_API_BASE_URL: Final = "api_base_url"
CONF_CLOUDHOOK: Final = "cloudhook"
# The customer's pages: a second webhook (GET and POST, public), its cloudhook's address when
# the account uses HA Cloud, and the secret that signs session page tokens.
CONF_PAGES_WEBHOOK_ID: Final = "pages_webhook_id"
CONF_PAGES_URL: Final = "pages_cloudhook_url"
CONF_PAGES_SECRET: Final = "pages_secret"
# Options.
CONF_ACK_TIMEOUT: Final = "ack_timeout"
CONF_AUTO_REFUND: Final = "auto_refund"
# The business name Razorpay's checkout shows (the posters print it for customers to check).
CONF_MERCHANT_NAME: Final = "merchant_name"
# The topic prefixes agents are discovered under (comma-separated; issue #27).
CONF_DISCOVERY_PREFIXES: Final = "discovery_prefixes"
DEFAULT_ACK_TIMEOUT_S: Final = 20
DEFAULT_API_BASE_URL: Final = "https://api.razorpay.com"

# Subentries: plans and bays.
SUBENTRY_PLAN: Final = "plan"
SUBENTRY_BAY: Final = "bay"
# A plan priced per minute (its own form: the fixed plan's form and data stay as in 0.2).
SUBENTRY_RATE_PLAN: Final = "rate_plan"
SUBENTRY_ENERGY_PLAN: Final = "energy_plan"
PLAN_SUBENTRIES: Final = (SUBENTRY_PLAN, SUBENTRY_RATE_PLAN, SUBENTRY_ENERGY_PLAN)
CONF_RATE: Final = "rate"
CONF_MIN_MINUTES: Final = "min_minutes"
CONF_CODE: Final = "code"
CONF_NAME: Final = "name"
CONF_MINUTES: Final = "minutes"
CONF_PRICE: Final = "price"
CONF_PRICE_PAISE: Final = "price_paise"
CONF_BAY_ID: Final = "bay_id"
CONF_PLANS: Final = "plans"
CONF_DRIVER: Final = "driver"
CONF_NODE: Final = "node"
CONF_AGENT_BAY: Final = "agent_bay"
CONF_PREFIX: Final = "prefix"
CONF_SWITCH_ENTITY: Final = "switch_entity"
CONF_DEFAULT_MINUTES: Final = "default_minutes"
CONF_MAX_MINUTES: Final = "max_minutes"
CONF_STATIC_QR: Final = "static_qr"
# Entry data: every static QR code the account made and whether it is closed (``qr_codes``).
CONF_QR_CODES: Final = "qr_codes"
CONF_DYNAMIC_QR: Final = "dynamic_qr"
CONF_QR_VALIDITY: Final = "qr_validity_s"
CONF_HOLD_MINUTES: Final = "hold_minutes"
# Generated per bay, never shown: the dynamic QR code's shared secret, the display's token.
CONF_QR_SECRET: Final = "qr_secret"
CONF_DISPLAY_TOKEN: Final = "display_token"

# Events fired on the bus.
EVENT_PAYMENT_RECEIVED: Final = f"{DOMAIN}_payment_received"
EVENT_SESSION_STARTED: Final = f"{DOMAIN}_session_started"
EVENT_SESSION_ENDED: Final = f"{DOMAIN}_session_ended"
EVENT_SESSION_FAILED: Final = f"{DOMAIN}_session_failed"
EVENT_REFUND: Final = f"{DOMAIN}_refund"
EVENT_PAYMENT_UNMATCHED: Final = f"{DOMAIN}_payment_unmatched"

# Webhook limits and timing.
MAX_WEBHOOK_BODY: Final = 1024 * 1024
RECONCILE_INTERVAL_S: Final = 5 * 60
# A payment found only by reconciliation this long after it was made is refunded, not started:
# the customer has most likely walked away.
LATE_PAYMENT_S: Final = 15 * 60
# A refund still pending this long (its webhook may have been missed) is asked about.
REFUND_CHECK_AFTER_S: Final = 30 * 60
# A refund Razorpay has not accepted after this long (409s, 429s, 5xx, no network) needs the
# owner: it is still sent with the same key, and a repair says so.
REFUND_STUCK_S: Final = 24 * 3600
# No signed delivery this long after the account was added: the webhook is not reaching us.
WEBHOOK_SILENT_S: Final = 24 * 3600
WEBHOOK_UNREACHABLE: Final = "webhook_unreachable"

# Sites (issue #25): a subentry type; a bay's site and rated power; events of opening hours.
SUBENTRY_SITE: Final = "site"
CONF_SITE_ID: Final = "site_id"
CONF_RATED_W: Final = "rated_w"
EVENT_SITE_OPENED: Final = f"{DOMAIN}_site_opened"
EVENT_SITE_CLOSED: Final = f"{DOMAIN}_site_closed"
# The repair raised while some of an account's bays are at a site that was removed.
BAY_WITHOUT_SITE: Final = "bay_without_site"
# The repair raised while a site names a time zone that no longer loads (it runs on HA's).
SITE_TIME_ZONE_UNKNOWN: Final = "site_time_zone_unknown"
# The repair raised while the tax details stored in the options are not valid (receipts are
# issued meanwhile): saved by an older form, or edited by hand.
TAX_DETAILS_INVALID: Final = "tax_details_invalid"
