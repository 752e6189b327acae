"""A local stand-in of Razorpay's API, one for the tests and the demo.

``standin.RazorpayStandin`` is the API (payment links, payments, orders, refunds) that the
real ``razorpay`` SDK talks to over HTTP; ``fixtures`` builds its entities and webhooks from
Razorpay's documented examples in ``tests/fixtures/razorpay``. ``server`` adds what the demo
needs around the same stand-in: a checkout page, webhook delivery, a refunds page, and a
state file so that a restarted demo keeps its payments (``python -m devtools.razorpay_standin``).
"""

from .fixtures import Webhook, sign
from .standin import Call, PaidPayment, RazorpayStandin

__all__ = ["Call", "PaidPayment", "RazorpayStandin", "Webhook", "sign"]
