from typing import Any

from .base import Resource

class Payment(Resource):
    def fetch(
        self, payment_id: str, data: dict[str, Any] = ..., **kwargs: Any
    ) -> dict[str, Any]: ...
    def refund(
        self, payment_id: str, data: dict[str, Any] = ..., **kwargs: Any
    ) -> dict[str, Any]: ...
    def fetch_refund_id(self, payment_id: str, refund_id: str, **kwargs: Any) -> dict[str, Any]: ...
