"""Constants of the qr_charging integration."""

from typing import Final

DOMAIN: Final = "qr_charging"

CONF_KEY_ID: Final = "key_id"
CONF_KEY_SECRET: Final = "key_secret"
CONF_WEBHOOK_SECRET: Final = "webhook_secret"
CONF_API_BASE_URL: Final = "api_base_url"
DEFAULT_API_BASE_URL: Final = "https://api.razorpay.com"
