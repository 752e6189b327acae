"""Home Assistant over its own HTTP and WebSocket APIs: what the frontend does, as a script.

Onboarding (``/api/onboarding/...``), the owner's login (``/auth/login_flow``, ``/auth/token``),
config flows and subentry flows (``/api/config/config_entries/...``), actions
(``/api/services/...``) and states (``/api/states/...``).
"""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp


class HomeAssistantError(Exception):
    """HA answered something the demo cannot go on with."""


class HomeAssistant:
    """A client of one HA instance on 127.0.0.1."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.url = f"http://127.0.0.1:{port}"
        self.client_id = f"{self.url}/"
        self.redirect_uri = f"{self.url}/?auth_callback=1"
        self.token: str | None = None
        self._ids = itertools.count(1)

    # -- plain HTTP ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        data: Any = None,
        expect: tuple[int, ...] = (200, 201),
        auth: bool = True,
    ) -> Any:
        """One call; the parsed JSON answer (or text). HomeAssistantError on another status."""
        async with self.session.request(
            method,
            f"{self.url}{path}",
            json=json,
            data=data,
            headers=self._headers() if auth else {},
            timeout=aiohttp.ClientTimeout(total=60),
        ) as response:
            text = await response.text()
            if response.status not in expect:
                raise HomeAssistantError(f"{method} {path}: HTTP {response.status}: {text[:500]}")
            if response.content_type == "application/json":
                return await response.json()
            return text

    async def up(self) -> bool:
        """Whether HA's web server answers (the frontend's manifest)."""
        try:
            async with self.session.get(
                f"{self.url}/manifest.json", timeout=aiohttp.ClientTimeout(total=3)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def running(self) -> bool:
        """Whether HA has finished starting (``/api/config`` says RUNNING)."""
        try:
            config = await self.request("GET", "/api/config")
        except (HomeAssistantError, aiohttp.ClientError, TimeoutError):
            return False
        return bool(config.get("state") == "RUNNING")

    # -- onboarding and login -----------------------------------------------------------------

    async def onboarding_steps(self) -> dict[str, bool]:
        """Onboarding's steps and whether each is done; {} once HA is onboarded."""
        try:
            steps = await self.request("GET", "/api/onboarding", auth=False)
        except HomeAssistantError:
            return {}  # onboarding's views are only there until it is done
        return {step["step"]: bool(step["done"]) for step in steps}

    async def _token(self, grant: dict[str, str]) -> str:
        answer = await self.request(
            "POST", "/auth/token", data={**grant, "client_id": self.client_id}, auth=False
        )
        return str(answer["access_token"])

    async def onboard(self, name: str, username: str, password: str) -> None:
        """Create the owner and finish every onboarding step, as the frontend's wizard does."""
        steps = await self.onboarding_steps()
        if not steps.get("user"):
            answer = await self.request(
                "POST",
                "/api/onboarding/users",
                {
                    "client_id": self.client_id,
                    "name": name,
                    "username": username,
                    "password": password,
                    "language": "en",
                },
                auth=False,
            )
            self.token = await self._token(
                {"grant_type": "authorization_code", "code": answer["auth_code"]}
            )
        else:
            await self.login(username, password)
        if not steps.get("core_config"):
            await self.request("POST", "/api/onboarding/core_config", {})
        if not steps.get("analytics"):
            await self.request("POST", "/api/onboarding/analytics", {})
        if not steps.get("integration"):
            await self.request(
                "POST",
                "/api/onboarding/integration",
                {"client_id": self.client_id, "redirect_uri": self.redirect_uri},
            )

    async def login(self, username: str, password: str) -> None:
        """Log in as the login page does; keeps the access token."""
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.redirect_uri,
            },
            auth=False,
        )
        result = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"username": username, "password": password, "client_id": self.client_id},
            auth=False,
        )
        if result.get("type") != "create_entry":
            raise HomeAssistantError(f"login refused: {result.get('errors')}")
        self.token = await self._token(
            {"grant_type": "authorization_code", "code": result["result"]}
        )

    async def token_works(self, token: str) -> bool:
        """Whether HA accepts this token."""
        try:
            async with self.session.get(
                f"{self.url}/api/",
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    # -- WebSocket ----------------------------------------------------------------------------

    async def ws(self, command: dict[str, Any]) -> Any:
        """One WebSocket command (on a connection of its own); its result."""
        async with self.session.ws_connect(f"{self.url}/api/websocket") as socket:
            await socket.receive_json(timeout=30)  # auth_required
            await socket.send_json({"type": "auth", "access_token": self.token})
            if (await socket.receive_json(timeout=30)).get("type") != "auth_ok":
                raise HomeAssistantError("WebSocket authentication failed")
            message_id = next(self._ids)
            await socket.send_json({"id": message_id, **command})
            while True:
                answer = await socket.receive_json(timeout=60)
                if answer.get("id") == message_id and answer.get("type") == "result":
                    break
        if not answer.get("success"):
            raise HomeAssistantError(f"{command['type']}: {answer.get('error')}")
        return answer.get("result")

    # -- config entries and flows -------------------------------------------------------------

    async def entries(self, domain: str) -> list[dict[str, Any]]:
        """The config entries of an integration."""
        answer = await self.request("GET", f"/api/config/config_entries/entry?domain={domain}")
        return list(answer)

    async def flow(self, handler: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Start a config flow and answer its forms with ``steps``; its last result."""
        result = await self.request("POST", "/api/config/config_entries/flow", {"handler": handler})
        return await self._answer("/api/config/config_entries/flow", result, steps)

    async def subentry_flow(
        self, entry_id: str, subentry_type: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        """Add a subentry (a plan, a bay) through its flow; the flow's result."""
        base = "/api/config/config_entries/subentries/flow"
        result = await self.request("POST", base, {"handler": [entry_id, subentry_type]})
        return await self._answer(base, result, [values])

    async def reconfigure_subentry(
        self, entry_id: str, subentry_type: str, subentry_id: str, steps: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Edit a subentry (a bay) through its reconfigure flow (menus, then forms)."""
        base = "/api/config/config_entries/subentries/flow"
        result = await self.request(
            "POST", base, {"handler": [entry_id, subentry_type], "subentry_id": subentry_id}
        )
        return await self._answer(base, result, steps)

    async def continue_flow(self, flow_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Answer the form of a config flow already in progress (a discovered one)."""
        path = f"/api/config/config_entries/flow/{flow_id}"
        return dict(await self.request("POST", path, values))

    async def _answer(
        self, base: str, result: dict[str, Any], steps: list[dict[str, Any]]
    ) -> dict[str, Any]:
        for values in steps:
            if result.get("type") not in ("form", "menu"):
                break
            if result.get("errors"):
                raise HomeAssistantError(f"{base}: form errors {result['errors']}")
            result = await self.request("POST", f"{base}/{result['flow_id']}", values)
        if result.get("type") == "form":
            raise HomeAssistantError(
                f"{base}: the flow still asks {result.get('step_id')}: {result.get('errors')}"
            )
        return result

    async def flows_in_progress(self, handler: str) -> list[dict[str, Any]]:
        """Discovered flows of an integration waiting for the owner."""
        flows = await self.ws({"type": "config_entries/flow/progress"})
        return [flow for flow in flows if flow["handler"] == handler]

    async def subentries(self, entry_id: str) -> list[dict[str, Any]]:
        """The subentries of a config entry."""
        return list(await self.ws({"type": "config_entries/subentries/list", "entry_id": entry_id}))

    async def entity_registry(self) -> list[dict[str, Any]]:
        """Every registered entity."""
        return list(await self.ws({"type": "config/entity_registry/list"}))

    # -- states and actions -------------------------------------------------------------------

    async def state(self, entity_id: str) -> dict[str, Any]:
        """An entity's state object."""
        return dict(await self.request("GET", f"/api/states/{entity_id}"))

    async def action(self, domain: str, service: str, data: dict[str, Any]) -> Any:
        """Call an action and return its response data."""
        answer = await self.request(
            "POST", f"/api/services/{domain}/{service}?return_response", data
        )
        return answer["service_response"]
