"""Screenshots of the demo for the README (``scripts/screenshots``, which sets it up).

Starts ``scripts/demo`` in a folder of its own (so the pictures always show a fresh demo), has
a customer pay for 30 minutes at Bay 1 so the dashboard shows a bay charging beside an idle
one, logs in to Home Assistant as the demo owner in headless Chromium, and saves:

- ``docs/images/demo-dashboard.png``: the demo's dashboard with both bays, each QR code
  opening the bay's page (Bay 2's the dynamic code of its display);
- ``docs/images/demo-checkout.png``: the Razorpay stand-in's checkout page of a payment link.

Only the standard library and playwright (driving the system's Chromium; playwright's own
browser download is not used).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READY = "QR Charging demo is running"


def _post(url: str, data: dict[str, Any], token: str | None = None, *, form: bool = False) -> Any:
    body = (urllib.parse.urlencode(data) if form else json.dumps(data)).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
        "Accept": "application/json",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


class RunningDemo:
    """``scripts/demo`` in a temporary folder, until ``stop``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder.parent / "demo-output.log"
        with self.log.open("wb") as out:
            # The demo's own entry, in the floor venv: scripts/screenshots ran scripts/setup
            # already (scripts/demo would run it again).
            self.proc = subprocess.Popen(
                [
                    str(ROOT / ".venv" / "bin" / "python"),
                    "-m",
                    "devtools.demo",
                    "--dir",
                    str(folder),
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + 600
        while READY not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the demo did not start:\n{self.log.read_text()}")
            time.sleep(0.5)
        state = json.loads((folder / "demo.json").read_text())
        self.ha = f"http://127.0.0.1:{state['ports']['homeassistant']}"
        self.standin = f"http://127.0.0.1:{state['ports']['standin']}"
        self.password = str(state["owner_password"])
        self.token = str(state["token"])

    def link(self, bay: str, plan: str) -> str:
        """A payment link's checkout address, made through the integration's action."""
        answer = _post(
            f"{self.ha}/api/services/qr_charging/create_payment_link?return_response",
            {"bay": bay, "plan": plan},
            self.token,
        )
        return str(answer["service_response"]["url"])

    def pay(self, url: str) -> None:
        """Press "Pay (test)" on the checkout."""
        _post(url, {"action": "pay"}, form=True)

    def stop(self) -> None:
        """Ctrl-C, as a person would; the demo stops everything it started."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(120)


def _log_in(page: Page, demo: RunningDemo) -> None:
    page.goto(f"{demo.ha}/", wait_until="domcontentloaded")
    page.locator("input[name=username]").fill("owner")
    page.locator("input[name=password]").fill(demo.password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{demo.ha}/lovelace/**", timeout=60_000)


def _wait_for_images(page: Page, selector: str, count: int) -> None:
    """Until ``count`` images (the QR codes) have loaded."""
    images = page.locator(selector)
    images.nth(count - 1).wait_for(state="attached", timeout=60_000)
    deadline = time.monotonic() + 60
    while not all(
        image.evaluate("e => e.complete && e.naturalWidth > 0")
        for image in images.element_handles()
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("the QR codes did not load")
        page.wait_for_timeout(200)


def take(chromium: str) -> list[Path]:
    """Run the demo, take the pictures, stop the demo."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="qr-demo-shots-") as tmp:
        demo = RunningDemo(Path(tmp) / "demo")
        try:
            demo.pay(demo.link("bay-1", "p30"))
            checkout = demo.link("bay-2", "p1")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                _log_in(page, demo)
                page.goto(f"{demo.ha}/qr-charging/bays", wait_until="domcontentloaded")
                page.get_by_text("Bay 2").first.wait_for(timeout=60_000)
                _wait_for_images(page, "hui-picture-entity-card img", 2)
                shots.append(IMAGES / "demo-dashboard.png")
                page.screenshot(path=shots[-1])
                phone = browser.new_page(viewport={"width": 400, "height": 560})
                phone.goto(checkout, wait_until="networkidle")
                shots.append(IMAGES / "demo-checkout.png")
                phone.screenshot(path=shots[-1])
                browser.close()
        finally:
            demo.stop()
    return shots


def main() -> None:
    """Command line: ``python -m devtools.screenshots [--chromium PATH]``."""
    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__.split("\n")[0])
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    for path in take(args.chromium):
        print(f"saved {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
