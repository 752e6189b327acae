from typing import Any

from .base import Resource

class Qrcode(Resource):
    def create(self, data: dict[str, Any] = ..., **kwargs: Any) -> dict[str, Any]: ...
