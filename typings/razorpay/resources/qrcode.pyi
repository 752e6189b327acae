from typing import Any

from .base import Resource

class Qrcode(Resource):
    def create(self, data: dict[str, Any] = ..., **kwargs: Any) -> dict[str, Any]: ...
    def fetch(
        self, qrcode_id: str, data: dict[str, Any] = ..., **kwargs: Any
    ) -> dict[str, Any]: ...
    def close(self, qrcode_id: str, **kwargs: Any) -> dict[str, Any]: ...
