"""The agent's configuration: a YAML file checked by a voluptuous schema.

Every problem is reported as ``key: problem`` (for example ``bays[1].pin: ...``) so the
person editing ``agent.yaml`` on a Pi knows which line to fix, and the program stops
before it touches a GPIO pin.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

ID_PATTERN = r"^[a-zA-Z0-9_-]+$"
PREFIX_PATTERN = r"^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*$"
# The agents' topic prefix: one topic level of at most 32 characters, as Home Assistant's
# account option "Agent topic prefixes" (its ID_PATTERN) can name it; no '/' (HA subscribes
# to <prefix>/+/config, one level per part).
TOPIC_PREFIX_PATTERN = r"^[a-zA-Z0-9_-]{1,32}$"
DEFAULT_PREFIX = "qr_charging"
DEFAULT_MAX_SESSION_S = 14400
DEFAULT_STATE_FILE = "/var/lib/pi-mqtt-relay/state.json"
# BCM numbers of the 40-pin header's GPIOs.
MAX_BCM_PIN = 27
# A 16 A socket at 230 V.
DEFAULT_MAX_POWER_W = 3680
# Modbus RTU addresses a meter can be given; 0xF8 is the PZEM-004T's general address.
PZEM_GENERAL_ADDRESS = 0xF8
MAX_MODBUS_ADDRESS = 247
METER_KINDS = ("pzem004t", "mock")
# MQTT's registered ports, plain and over TLS: a ``brokers`` entry without a port takes one.
MQTT_PORT = 1883
MQTT_TLS_PORT = 8883
MAX_BROKERS = 10
# ``host``, ``host:port``, ``[v6-address]`` or ``[v6-address]:port``.
_ADDRESS = re.compile(
    r"^(?:(?P<name>[A-Za-z0-9._-]+)|\[(?P<v6>[0-9A-Fa-f:.]+)\])(?::(?P<port>\d+))?$"
)
DEFAULT_HEARTBEAT_S = 30


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


@dataclass(frozen=True)
class TlsConfig:
    """TLS settings of the broker connection."""

    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    insecure: bool


@dataclass(frozen=True)
class BrokerAddress:
    """One broker (a cluster node, or a load balancer's name) the agent may connect to."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class BrokerConfig:
    """Where and how to reach the MQTT broker: the addresses are tried in order, round robin."""

    addresses: tuple[BrokerAddress, ...]
    username: str | None
    password: str | None
    keepalive: int
    tls: TlsConfig | None
    heartbeat_s: int = DEFAULT_HEARTBEAT_S


@dataclass(frozen=True)
class MeterConfig:
    """A bay's energy meter: a PZEM-004T on a serial port, or a mock charging curve."""

    kind: str
    max_power_w: float
    port: str | None = None
    address: int = PZEM_GENERAL_ADDRESS
    # The mock's charging curve (see meters.ChargingCurve).
    power_w: float = 3000.0
    taper_at_wh: float = 500.0
    taper_wh: float = 100.0
    standby_w: float = 2.0


@dataclass(frozen=True)
class MeteringConfig:
    """Agent-wide meter settings: reporting steps, polling and the silence limit."""

    report_step_wh: float = 10.0
    report_step_w: float = 50.0
    meter_poll_s: float = 2.0
    meter_silent_s: float = 60.0


@dataclass(frozen=True)
class BayConfig:
    """One charging bay: its relay pin, the time a plain ``ON`` grants, its meter if any."""

    id: str
    name: str
    pin: int
    active_high: bool
    default_minutes: float
    meter: MeterConfig | None = None

    @property
    def default_s(self) -> float:
        """Seconds a plain ``ON`` powers the bay for."""
        return self.default_minutes * 60.0


@dataclass(frozen=True)
class AgentConfig:
    """The whole validated configuration."""

    broker: BrokerConfig
    node_id: str
    node_name: str
    topic_prefix: str
    bays: tuple[BayConfig, ...]
    max_session_s: float
    state_file: Path
    ha_discovery: bool
    discovery_prefix: str
    metering: MeteringConfig = MeteringConfig()

    def bay(self, bay_id: str) -> BayConfig | None:
        """Return the bay with this id, or None when the agent has no such bay."""
        return next((bay for bay in self.bays if bay.id == bay_id), None)


def _finite_number(value: Any) -> float:
    """An int or float that is finite (YAML booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise vol.Invalid("expected a number")
    try:
        number = float(value)
    except OverflowError:  # YAML reads a long run of digits as an int of any size
        raise vol.Invalid("is too large") from None
    if not math.isfinite(number):
        raise vol.Invalid("must be a finite number")
    return number


def _positive_number(value: Any) -> float:
    """Accept an int or float greater than zero."""
    number = _finite_number(value)
    if not number > 0:
        raise vol.Invalid("must be a number greater than 0")
    return number


def _non_negative_number(value: Any) -> float:
    """Accept an int or float of at least zero."""
    number = _finite_number(value)
    if number < 0:
        raise vol.Invalid("must be a number of at least 0")
    return number


def _integer(value: Any) -> int:
    """Accept a whole number; YAML's ``true``/``false`` are not pin numbers or ports."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise vol.Invalid("expected a whole number")
    return int(value)


def _existing_file(value: Any) -> str:
    """Accept the path of a file that exists (CA, certificate and key files)."""
    if not isinstance(value, str) or not value:
        raise vol.Invalid("expected a file path")
    if not Path(value).is_file():
        raise vol.Invalid(f"file not found: {value}")
    return value


def _broker_address(value: Any) -> tuple[str, int | None]:
    """One ``brokers`` entry as (host, port); the port left out is chosen with the TLS setting."""
    if not isinstance(value, str):
        raise vol.Invalid("expected 'host' or 'host:port'")
    found = _ADDRESS.match(value)
    if found is None:
        raise vol.Invalid(f"'{value}' is not 'host' or 'host:port'")
    port = found["port"]
    if port is not None and not 1 <= int(port) <= 65535:
        raise vol.Invalid(f"'{value}': the port must be between 1 and 65535")
    return found["name"] or found["v6"], None if port is None else int(port)


_ID = vol.All(str, vol.Match(ID_PATTERN, msg="only letters, digits, '_' and '-' are allowed"))


def _tls_settings(value: Any) -> Any:
    """A ``tls:`` key left empty is a mistake, not a plain connection.

    YAML reads ``tls:`` with nothing under it (say, only the key uncommented) as null, which
    would otherwise connect without TLS and send the password in clear text.
    """
    if value is None or value == {}:
        raise vol.Invalid(
            "is empty: give its settings (ca_file, ...) for TLS, or remove the key for a "
            "plain connection"
        )
    return value


_TLS = vol.All(
    _tls_settings,
    vol.Schema(
        {
            vol.Optional("ca_file", default=None): vol.Any(None, _existing_file),
            vol.Optional("cert_file", default=None): vol.Any(None, _existing_file),
            vol.Optional("key_file", default=None): vol.Any(None, _existing_file),
            vol.Optional("insecure", default=False): bool,
        }
    ),
)

_BROKER = vol.Schema(
    {
        # ``host`` (and ``port``) or ``brokers``: _cross_checks wants exactly one of them.
        vol.Optional("host"): vol.All(str, vol.Length(min=1)),
        vol.Optional("port"): vol.All(
            _integer, vol.Range(min=1, max=65535, msg="must be between 1 and 65535")
        ),
        vol.Optional("brokers"): vol.All(
            list,
            vol.Length(
                min=1, max=MAX_BROKERS, msg=f"give between 1 and {MAX_BROKERS} 'host:port' entries"
            ),
            [_broker_address],
        ),
        vol.Optional("heartbeat_s", default=DEFAULT_HEARTBEAT_S): vol.All(
            _integer, vol.Range(min=5, max=300, msg="must be a whole number of seconds, 5-300")
        ),
        vol.Optional("username", default=None): vol.Any(None, str),
        vol.Optional("password", default=None): vol.Any(None, str),
        vol.Optional("keepalive", default=30): vol.All(_integer, vol.Range(min=5, max=3600)),
        vol.Optional("tls"): _TLS,
    }
)

_METER = vol.Schema(
    {
        vol.Required("kind"): vol.In(METER_KINDS, msg=f"must be one of {', '.join(METER_KINDS)}"),
        vol.Optional("port"): vol.All(str, vol.Length(min=1)),
        vol.Optional("address"): vol.All(
            _integer,
            vol.Any(
                vol.Range(min=1, max=MAX_MODBUS_ADDRESS),
                PZEM_GENERAL_ADDRESS,
                msg=f"must be a Modbus address 1-{MAX_MODBUS_ADDRESS} or 248 (0xF8, general)",
            ),
        ),
        vol.Optional("max_power_w", default=DEFAULT_MAX_POWER_W): _positive_number,
        vol.Optional("power_w"): _positive_number,
        vol.Optional("taper_at_wh"): _non_negative_number,
        vol.Optional("taper_wh"): _positive_number,
        vol.Optional("standby_w"): _non_negative_number,
    }
)

_BAY = vol.Schema(
    {
        vol.Required("id"): _ID,
        vol.Optional("name"): vol.All(str, vol.Length(min=1)),
        vol.Required("pin"): vol.All(
            _integer,
            vol.Range(min=0, max=MAX_BCM_PIN, msg=f"must be a BCM GPIO number 0-{MAX_BCM_PIN}"),
        ),
        vol.Optional("active_high", default=True): bool,
        vol.Optional("default_minutes", default=30): _positive_number,
        vol.Optional("meter"): _METER,
    }
)

_SCHEMA = vol.Schema(
    {
        vol.Required("broker"): _BROKER,
        vol.Required("node"): vol.Schema(
            {
                vol.Required("id"): _ID,
                vol.Optional("name"): vol.All(str, vol.Length(min=1)),
            }
        ),
        vol.Optional("topic_prefix", default=DEFAULT_PREFIX): vol.All(
            str,
            vol.Match(
                TOPIC_PREFIX_PATTERN,
                msg="use 1 to 32 letters, digits, '_' and '-' only (no '/'): Home Assistant's"
                " option 'Agent topic prefixes' can name no other",
            ),
        ),
        vol.Required("bays"): vol.All([_BAY], vol.Length(min=1, msg="at least one bay is needed")),
        vol.Optional("max_session_s", default=DEFAULT_MAX_SESSION_S): _positive_number,
        vol.Optional("state_file", default=DEFAULT_STATE_FILE): vol.All(str, vol.Length(min=1)),
        vol.Optional("ha_discovery", default=False): bool,
        vol.Optional("discovery_prefix", default="homeassistant"): vol.All(
            str, vol.Match(PREFIX_PATTERN, msg="use letters, digits, '_', '-' and '/' only")
        ),
        vol.Optional("report_step_wh", default=10): _positive_number,
        vol.Optional("report_step_w", default=50): _positive_number,
        vol.Optional("meter_poll_s", default=2): _positive_number,
        vol.Optional("meter_silent_s", default=60): _positive_number,
        # Retired (any plausible drop is now a tentative reset): still accepted, and ignored,
        # so the config files of earlier agents keep loading.
        vol.Optional("reset_wh"): _non_negative_number,
    }
)


def _key_path(path: list[Any]) -> str:
    """Render a voluptuous error path as ``bays[1].pin``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _explain(error: vol.Invalid) -> str:
    """Turn one voluptuous error into ``key: problem``."""
    message = error.error_message
    if message == "extra keys not allowed":
        message = "unknown key (check the spelling)"
    elif message == "required key not provided":
        message = "required key is missing"
    return f"{_key_path(error.path)}: {message}"


def _cross_checks(data: dict[str, Any]) -> list[str]:
    """Rules across keys that a per-key schema cannot express."""
    problems: list[str] = []
    seen_ids: dict[str, int] = {}
    seen_pins: dict[int, int] = {}
    for index, bay in enumerate(data["bays"]):
        if bay["id"] in seen_ids:
            problems.append(
                f"bays[{index}].id: '{bay['id']}' is already used by bays[{seen_ids[bay['id']]}]"
            )
        seen_ids.setdefault(bay["id"], index)
        if bay["pin"] in seen_pins:
            problems.append(
                f"bays[{index}].pin: GPIO {bay['pin']} is already used by "
                f"bays[{seen_pins[bay['pin']]}]"
            )
        seen_pins.setdefault(bay["pin"], index)
        if bay["default_minutes"] * 60 > data["max_session_s"]:
            problems.append(
                f"bays[{index}].default_minutes: {bay['default_minutes']:g} min is longer than "
                f"max_session_s ({data['max_session_s']:g} s)"
            )
    problems.extend(_meter_checks(data))
    broker = data["broker"]
    problems.extend(_address_checks(broker))
    tls = broker.get("tls")
    if tls and tls["key_file"] and not tls["cert_file"]:
        problems.append("broker.tls.key_file: needs broker.tls.cert_file as well")
    # MQTT 3.1.1 has no password without a user name; the link would drop it without a word.
    if broker["password"] is not None and broker["username"] is None:
        problems.append("broker.password: needs broker.username as well")
    return problems


def _address_checks(broker: dict[str, Any]) -> list[str]:
    """``host`` (with ``port``) or ``brokers``, exactly one form; no broker listed twice."""
    if "brokers" not in broker:
        return (
            []
            if "host" in broker
            else ["broker.host: required key is missing (or give broker.brokers)"]
        )
    given = [key for key in ("host", "port") if key in broker]
    if given:
        return [
            f"broker.brokers: give either broker.brokers or broker.host/port, not both "
            f"(remove broker.{' and broker.'.join(given)})"
        ]
    problems: list[str] = []
    seen: dict[BrokerAddress, int] = {}
    for index, entry in enumerate(_addresses(broker)):
        if entry in seen:
            problems.append(
                f"broker.brokers[{index}]: already listed as broker.brokers[{seen[entry]}]"
            )
        seen.setdefault(entry, index)
    return problems


def _addresses(broker: dict[str, Any]) -> tuple[BrokerAddress, ...]:
    """The brokers to try, in order; a port left out is MQTT's own (8883 with TLS)."""
    if "brokers" not in broker:
        return (BrokerAddress(broker["host"], broker.get("port", MQTT_PORT)),)
    default = MQTT_TLS_PORT if "tls" in broker else MQTT_PORT
    return tuple(
        BrokerAddress(host, default if port is None else port) for host, port in broker["brokers"]
    )


_KEYS_OF_KIND = {
    "pzem004t": {"port", "address"},
    "mock": {"power_w", "taper_at_wh", "taper_wh", "standby_w"},
}


def _meter_checks(data: dict[str, Any]) -> list[str]:
    """Rules of the bays' meters across keys.

    Each kind takes only its own keys; a PZEM-004T needs its port; meters sharing a port
    need distinct addresses of their own.
    """
    problems: list[str] = []
    on_port: dict[tuple[str, int], int] = {}
    per_port: dict[str, int] = {}
    for index, bay in enumerate(data["bays"]):
        meter = bay.get("meter")
        if meter is None:
            continue
        for kind, keys in _KEYS_OF_KIND.items():
            if kind != meter["kind"]:
                problems += [
                    f"bays[{index}].meter.{key}: only for a {kind} meter"
                    for key in sorted(keys & set(meter))
                ]
        if meter["kind"] != "pzem004t":
            continue
        if "port" not in meter:
            problems.append(f"bays[{index}].meter.port: required for a pzem004t meter")
            continue
        per_port[meter["port"]] = per_port.get(meter["port"], 0) + 1
        key = (meter["port"], meter.get("address", PZEM_GENERAL_ADDRESS))
        if key in on_port:
            problems.append(
                f"bays[{index}].meter.address: {meter['address']} on {meter['port']} is "
                f"already used by bays[{on_port[key]}]"
            )
        on_port.setdefault(key, index)
    for (port, address), index in on_port.items():
        if address == PZEM_GENERAL_ADDRESS and per_port[port] > 1:
            problems.append(
                f"bays[{index}].meter.address: several meters share {port}; give each its "
                "own address (248, the general address, is answered by every meter)"
            )
    if data["meter_poll_s"] >= data["meter_silent_s"]:
        problems.append(
            f"meter_poll_s: {data['meter_poll_s']:g} s must be shorter than meter_silent_s "
            f"({data['meter_silent_s']:g} s)"
        )
    return problems


def _meter(raw: dict[str, Any] | None) -> MeterConfig | None:
    """The bay's meter; keys left out take :class:`MeterConfig`'s defaults."""
    if raw is None:
        return None
    return MeterConfig(**raw)


def parse_config(raw: Any) -> AgentConfig:
    """Validate already-loaded YAML data and build the typed configuration."""
    if not isinstance(raw, dict):
        raise ConfigError("(top level): expected a mapping of keys (broker, node, bays, ...)")
    try:
        data = _SCHEMA(raw)
    except vol.MultipleInvalid as err:
        raise ConfigError("\n".join(sorted({_explain(e) for e in err.errors}))) from None
    problems = _cross_checks(data)
    if problems:
        raise ConfigError("\n".join(problems))
    broker = data["broker"]
    tls = broker.get("tls")
    return AgentConfig(
        broker=BrokerConfig(
            addresses=_addresses(broker),
            username=broker["username"],
            password=broker["password"],
            keepalive=broker["keepalive"],
            tls=TlsConfig(
                ca_file=tls["ca_file"],
                cert_file=tls["cert_file"],
                key_file=tls["key_file"],
                insecure=tls["insecure"],
            )
            if tls is not None
            else None,
            heartbeat_s=broker["heartbeat_s"],
        ),
        node_id=data["node"]["id"],
        node_name=data["node"].get("name", data["node"]["id"]),
        topic_prefix=data["topic_prefix"],
        bays=tuple(
            BayConfig(
                id=bay["id"],
                name=bay.get("name", bay["id"]),
                pin=bay["pin"],
                active_high=bay["active_high"],
                default_minutes=bay["default_minutes"],
                meter=_meter(bay.get("meter")),
            )
            for bay in data["bays"]
        ),
        max_session_s=data["max_session_s"],
        state_file=Path(data["state_file"]),
        ha_discovery=data["ha_discovery"],
        discovery_prefix=data["discovery_prefix"],
        metering=MeteringConfig(
            report_step_wh=data["report_step_wh"],
            report_step_w=data["report_step_w"],
            meter_poll_s=data["meter_poll_s"],
            meter_silent_s=data["meter_silent_s"],
        ),
    )


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate the YAML file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the file ({err.strerror or err})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    return parse_config(raw)


__all__ = [
    "AgentConfig",
    "BayConfig",
    "BrokerAddress",
    "BrokerConfig",
    "ConfigError",
    "MeterConfig",
    "MeteringConfig",
    "TlsConfig",
    "load_config",
    "parse_config",
]
