"""Numbers in agent.yaml too large for a float are configuration errors, not a crash.

Found by fuzzing the config loader (tests/agent/test_fuzz.py): YAML reads a long run of digits
as a Python integer, and turning it into seconds raised OverflowError out of the loader, so
``--check-config`` and the service stopped with a traceback (exit 1, restarted by systemd)
instead of naming the key (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pi_mqtt_relay.__main__ import EXIT_CONFIG, main
from pi_mqtt_relay.config import ConfigError, load_config

HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("max_session_s", f"max_session_s: {HUGE}\n"),
        ("bays[0].default_minutes", ""),
    ],
)
def test_a_number_too_large_names_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, text: str
) -> None:
    minutes = HUGE if key.startswith("bays") else "1"
    path = tmp_path / "agent.yaml"
    path.write_text(
        "broker: {host: 127.0.0.1}\nnode: {id: kiosk-1}\n"
        f"bays: [{{id: bay-1, pin: 17, default_minutes: {minutes}}}]\n{text}"
    )
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)
    assert main(["--config", str(path), "--check-config"]) == EXIT_CONFIG
    assert key in capsys.readouterr().err
