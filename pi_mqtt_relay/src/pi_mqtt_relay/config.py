"""The agent's configuration: a YAML file checked by a voluptuous schema.

Every problem is reported as ``key: problem`` (for example ``bays[1].pin: ...``) so the
person editing ``agent.yaml`` on a Pi knows which line to fix, and the program stops
before it touches a GPIO pin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

ID_PATTERN = r"^[a-zA-Z0-9_-]+$"
PREFIX_PATTERN = r"^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*$"
DEFAULT_PREFIX = "qr_charging"
DEFAULT_MAX_SESSION_S = 14400
DEFAULT_STATE_FILE = "/var/lib/pi-mqtt-relay/state.json"
# BCM numbers of the 40-pin header's GPIOs.
MAX_BCM_PIN = 27


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
class BrokerConfig:
    """Where and how to reach the MQTT broker."""

    host: str
    port: int
    username: str | None
    password: str | None
    keepalive: int
    tls: TlsConfig | None


@dataclass(frozen=True)
class BayConfig:
    """One charging bay: its relay pin and the time a plain ``ON`` grants."""

    id: str
    name: str
    pin: int
    active_high: bool
    default_minutes: float

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

    def bay(self, bay_id: str) -> BayConfig | None:
        """Return the bay with this id, or None when the agent has no such bay."""
        return next((bay for bay in self.bays if bay.id == bay_id), None)


def _positive_number(value: Any) -> float:
    """Accept an int or float greater than zero (YAML booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise vol.Invalid("expected a number")
    try:
        number = float(value)
    except OverflowError:  # YAML reads a long run of digits as an int of any size
        raise vol.Invalid("is too large") from None
    if not number > 0 or number == float("inf"):
        raise vol.Invalid("must be a number greater than 0")
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
        vol.Required("host"): vol.All(str, vol.Length(min=1)),
        vol.Optional("port", default=1883): vol.All(
            _integer, vol.Range(min=1, max=65535, msg="must be between 1 and 65535")
        ),
        vol.Optional("username", default=None): vol.Any(None, str),
        vol.Optional("password", default=None): vol.Any(None, str),
        vol.Optional("keepalive", default=30): vol.All(_integer, vol.Range(min=5, max=3600)),
        vol.Optional("tls"): _TLS,
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
            str, vol.Match(PREFIX_PATTERN, msg="use letters, digits, '_', '-' and '/' only")
        ),
        vol.Required("bays"): vol.All([_BAY], vol.Length(min=1, msg="at least one bay is needed")),
        vol.Optional("max_session_s", default=DEFAULT_MAX_SESSION_S): _positive_number,
        vol.Optional("state_file", default=DEFAULT_STATE_FILE): vol.All(str, vol.Length(min=1)),
        vol.Optional("ha_discovery", default=False): bool,
        vol.Optional("discovery_prefix", default="homeassistant"): vol.All(
            str, vol.Match(PREFIX_PATTERN, msg="use letters, digits, '_', '-' and '/' only")
        ),
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
    broker = data["broker"]
    tls = broker.get("tls")
    if tls and tls["key_file"] and not tls["cert_file"]:
        problems.append("broker.tls.key_file: needs broker.tls.cert_file as well")
    # MQTT 3.1.1 has no password without a user name; the link would drop it without a word.
    if broker["password"] is not None and broker["username"] is None:
        problems.append("broker.password: needs broker.username as well")
    return problems


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
            host=broker["host"],
            port=broker["port"],
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
            )
            for bay in data["bays"]
        ),
        max_session_s=data["max_session_s"],
        state_file=Path(data["state_file"]),
        ha_discovery=data["ha_discovery"],
        discovery_prefix=data["discovery_prefix"],
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
    "BrokerConfig",
    "ConfigError",
    "TlsConfig",
    "load_config",
    "parse_config",
]
