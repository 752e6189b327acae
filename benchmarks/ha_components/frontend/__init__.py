"""A headless stand-in for Home Assistant's frontend, for the benchmarks only.

The floor line's environment has no ``hass_frontend`` (the web UI's files), and without a
frontend Home Assistant starts in recovery mode, which leaves out the configuration under
test. The benchmark's configuration folder gets this in ``custom_components/frontend``: it
sets up nothing and accepts the panel calls other integrations make.
"""

from __future__ import annotations

from typing import Any

DOMAIN = "frontend"


async def async_setup(hass: Any, config: Any) -> bool:
    """Nothing to serve."""
    return True


def async_register_built_in_panel(*args: Any, **kwargs: Any) -> None:
    """Panels are not shown."""


def async_remove_panel(*args: Any, **kwargs: Any) -> None:
    """Panels are not shown."""


def add_extra_js_url(*args: Any, **kwargs: Any) -> None:
    """No web UI to extend."""
