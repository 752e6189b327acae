"""The one interface every bay driver implements; a new kind of relay is one new module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.core import HomeAssistant

from ..energy_rules import EnergyCount, ReportedMeter


@dataclass(frozen=True, slots=True)
class BayReport:
    """What the bay says it is doing."""

    powered: bool
    session_id: str | None
    until: float | None = None
    reason: str | None = None
    # False for a state replayed by the broker on subscribe (retained), which may describe a
    # command older than the session now starting.
    fresh: bool = True
    # A metered bay's last power reading (W) and its session's energy counted so far (Wh).
    power_w: float | None = None
    energy_wh: float | None = None


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """The device that holds a bay's relay, as it describes itself."""

    identifier: str
    name: str
    sw_version: str | None = None
    model: str | None = None


class BayDriver(ABC):
    """Switches one bay's power and tells what the bay reports."""

    def __init__(
        self,
        hass: HomeAssistant,
        bay_id: str,
        on_report: Callable[[BayReport], None],
        on_change: Callable[[], None],
    ) -> None:
        self.hass = hass
        self.bay_id = bay_id
        self._on_report = on_report
        self._on_change = on_change
        self.online = False
        self.agent: AgentInfo | None = None
        self.max_session_s: int | None = None
        # Whether the bay can count energy (so be sold it), and its meter's name for the owner.
        self.metered = False
        self.meter: str | None = None
        # A meter whose counts reach HA only as reports (an agent's), checked on each report.
        self.reported_meter: ReportedMeter | None = None

    @abstractmethod
    async def async_setup(self) -> None:
        """Start listening to the bay."""

    @abstractmethod
    async def async_unload(self) -> None:
        """Stop listening."""

    @abstractmethod
    async def async_turn_on(
        self, session_id: str, until: float, duration: int, sent: float, energy_wh: float | None
    ) -> None:
        """Power the bay for a session until a deadline (also used to extend it).

        ``energy_wh``: a metered session's energy paid for so far (None: a timed session).
        """

    @abstractmethod
    async def async_turn_off(self, session_id: str | None) -> None:
        """Cut power for a session (None: whatever runs)."""

    @property
    def known(self) -> bool:
        """Whether the bay's availability is known (``online`` can be trusted) after setup."""
        return True

    async def async_wait_known(self, within: float) -> None:  # noqa: B027 - optional hook
        """Wait (at most ``within`` seconds) until the bay's availability is known after setup."""

    async def async_wait_state(  # noqa: B027 - optional hook
        self, within: float, settled: Callable[[BayReport], bool] | None = None
    ) -> None:
        """Wait (at most ``within`` seconds) for the bay's first state report after setup.

        ``settled``: wait on, within the same bound, until a report it accepts.
        """

    @property
    def parent_device_id(self) -> str | None:
        """A device of another integration that switches the bay (a plug's), if any.

        A driver with ``agent`` set names its parent that way instead: the agent's device is
        ours to create.
        """
        return None

    def energy_for(self, session_id: str) -> float | None:
        """The energy the bay's meter counted for a session so far (Wh); None if unknown."""
        return None

    def meter_wh_for(self, session_id: str) -> float | None:
        """The counter reading HA's count of a session goes on from (Wh), where HA counts."""
        return None

    @property
    def power_w(self) -> float | None:
        """A metered bay's power now (W), if known."""
        return None

    def resume(  # noqa: B027 - optional hook
        self,
        session_id: str,
        until: float,
        energy_wh: float | None = None,
        counted: EnergyCount | None = None,
    ) -> None:
        """After a restart, the session the bay should be running (for drivers that forget).

        ``energy_wh``: a metered session's energy paid for; ``counted``: HA's count of it as
        last stored (``running_energy``), to count on from.
        """
