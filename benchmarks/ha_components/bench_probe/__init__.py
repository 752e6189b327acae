"""The benchmarks' probe inside Home Assistant (never shipped; copied into a test config).

- every callback of HA's event loop timed (``loop_probe.BlockProbe``, copied in beside this
  file), with the longest ones described and those of qr_charging marked;
- the time (``time.monotonic``, the same clock as the benchmark process's) at which entity
  states change, for entity ids containing a watched text;
- the bays of every qr_charging entry (online, status, session, status entity);
- enabling a disabled entry, timed, as the entry setup figure.

All views need the owner's token; they are called between measurements, not during them.
"""

from __future__ import annotations

import gc
import socket
import time
from typing import Any

from aiohttp import web
from homeassistant.components.http import HomeAssistantView
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .loop_probe import BlockProbe

DOMAIN = "bench_probe"
MAX_CHANGES = 500_000


class _State:
    def __init__(self, chains: bool) -> None:
        self.probe = BlockProbe("qr_charging", chains=chains)
        self.watch: str | None = None
        self.changes: list[tuple[float, str, str | None]] = []


async def async_setup(hass: HomeAssistant, config: dict[str, Any]) -> bool:
    """Start timing the loop and serve the views."""
    conf = config.get(DOMAIN) or {}
    state = _State(chains=bool(conf.get("chains", True)))
    state.probe.install()
    hass.data[DOMAIN] = state

    @callback
    def _changed(event: Event[Any]) -> None:
        watch = state.watch
        if watch is None or watch not in (entity_id := event.data["entity_id"]):
            return
        if len(state.changes) < MAX_CHANGES:
            new = event.data.get("new_state")
            state.changes.append((time.monotonic(), entity_id, new.state if new else None))

    hass.bus.async_listen(EVENT_STATE_CHANGED, _changed)
    for view in (BlocksView, ChangesView, BaysView, EnableView, GcView, NodelayView):
        hass.http.register_view(view(state))
    return True


class _View(HomeAssistantView):
    def __init__(self, state: _State) -> None:
        self.state = state


class BlocksView(_View):
    """GET: the loop's longest callbacks since the last reset (``?reset=1`` resets after)."""

    url = "/api/bench_probe/blocks"
    name = "api:bench_probe:blocks"

    async def get(self, request: web.Request) -> web.Response:
        """Snapshot, then reset when asked."""
        snapshot = self.state.probe.snapshot()
        if request.query.get("reset"):
            self.state.probe.reset()
        return self.json(snapshot)


class ChangesView(_View):
    """GET: state changes recorded since ``?since=<n>`` (``?watch=<text>`` sets what to record).

    Each change is [monotonic time, entity id, state]; the answer also says how many there are
    in all, for the next ``since``. ``?clear=1`` forgets them.
    """

    url = "/api/bench_probe/changes"
    name = "api:bench_probe:changes"

    async def get(self, request: web.Request) -> web.Response:
        """The changes since ``since``."""
        since = int(request.query.get("since", 0))
        changes = self.state.changes[since:]
        total = len(self.state.changes)
        if request.query.get("clear"):
            self.state.changes.clear()
            total = 0
        if "watch" in request.query:
            self.state.watch = request.query["watch"] or None
        return self.json({"changes": changes, "total": total})


class BaysView(_View):
    """GET: every qr_charging entry and its bays."""

    url = "/api/bench_probe/bays"
    name = "api:bench_probe:bays"

    async def get(self, request: web.Request) -> web.Response:
        """Entries with their state; bays: online, status, session, status and power entities."""
        hass: HomeAssistant = request.app["hass"]
        registry = er.async_get(hass)
        entries: list[dict[str, Any]] = []
        bays: dict[str, dict[str, Any]] = {}
        for entry in hass.config_entries.async_entries("qr_charging", include_disabled=True):
            entries.append({"entry_id": entry.entry_id, "state": entry.state.value})
            if entry.state is not ConfigEntryState.LOADED:
                continue
            for bay_id, runner in entry.runtime_data.bays.runners.items():
                session = runner.session
                bays[bay_id] = {
                    "online": runner.driver.online,
                    "status": runner.status.value,
                    "session": session.session_id if session else None,
                    "status_entity": registry.async_get_entity_id(
                        "sensor", "qr_charging", f"{entry.entry_id}_{bay_id}_status"
                    ),
                    "power_entity": registry.async_get_entity_id(
                        "sensor", "qr_charging", f"{entry.entry_id}_{bay_id}_power"
                    ),
                }
        return self.json({"entries": entries, "bays": bays})


class EnableView(_View):
    """POST {"entry_id"}: enable a disabled entry; the seconds its setup took."""

    url = "/api/bench_probe/enable"
    name = "api:bench_probe:enable"

    async def post(self, request: web.Request) -> web.Response:
        """Enable (which sets the entry up) and time it."""
        hass: HomeAssistant = request.app["hass"]
        entry_id = (await request.json())["entry_id"]
        start = time.perf_counter()
        ok = await hass.config_entries.async_set_disabled_by(entry_id, None)
        seconds = time.perf_counter() - start
        entry = hass.config_entries.async_get_entry(entry_id)
        return self.json(
            {"ok": ok, "seconds": seconds, "state": entry.state.value if entry else None}
        )


class GcView(_View):
    """POST: a full garbage collection (before reading the process's memory)."""

    url = "/api/bench_probe/gc"
    name = "api:bench_probe:gc"

    async def post(self, request: web.Request) -> web.Response:
        """Collect."""
        return self.json({"collected": gc.collect()})


class NodelayView(_View):
    """POST: TCP_NODELAY on Home Assistant's MQTT socket (paho leaves Nagle's algorithm on)."""

    url = "/api/bench_probe/mqtt_nodelay"
    name = "api:bench_probe:mqtt_nodelay"

    async def post(self, request: web.Request) -> web.Response:
        """Set it on the socket open now."""
        hass: HomeAssistant = request.app["hass"]
        sock = hass.data["mqtt"].client._mqttc.socket()
        if sock is None:
            return self.json({"error": "MQTT is not connected"}, 503)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.json({"nodelay": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)})
