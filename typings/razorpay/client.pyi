from typing import Any

import requests

from .resources.payment import Payment
from .resources.payment_link import PaymentLink
from .resources.qrcode import Qrcode

class Client:
    session: requests.Session
    auth: tuple[str, str] | None
    cert_path: str
    base_url: str
    payment: Payment
    payment_link: PaymentLink
    qrcode: Qrcode
    def __init__(
        self,
        session: requests.Session | None = None,
        auth: tuple[str, str] | None = None,
        **options: Any,
    ) -> None: ...
