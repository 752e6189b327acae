from typing import Any

class Resource:
    client: Any
    base_url: str
    def __init__(self, client: Any = None) -> None: ...
