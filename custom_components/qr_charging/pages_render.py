"""HTML of the customer's pages: jinja2 templates with autoescape, texts from translations.

Every page is one self-contained document (inline CSS, the QR code as inline SVG, no fonts or
scripts from elsewhere), since HA Cloud's cloudhook passes on only the status, the body as text
and the ``Content-Type``. The texts are the integration's translations (``selector.page_*``,
see ``strings.json``); templates hold no words of their own.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import segno
from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from .pages_model import rupees

TEMPLATES_DIR = Path(__file__).parent / "templates"
# The translation category that holds the pages' texts: hassfest's schema allows free keys with
# plain-text values only under ``selector`` (``selector.<name>.options.<key>``), so each page
# section is a pseudo-selector whose options are its texts. They are never used as a selector.
TEXT_CATEGORY = "selector"
SECTION_PREFIX = "page_"
QR_BORDER = 4
# QR codes kept drawn: a poster's per bay, a display's current one per bay (and the last).
QR_CACHE_SIZE = 64


def load_templates() -> dict[str, str]:
    """Read the templates (blocking: run in the executor)."""
    return {path.name: path.read_text("utf-8") for path in TEMPLATES_DIR.glob("*.j2")}


def compiled_renderer() -> Renderer:
    """The templates read and compiled (blocking: run in the executor).

    Compiling one takes ~10 ms; jinja2 would do it at its first use, in the event loop.
    """
    templates = load_templates()
    renderer = Renderer(templates)
    for name in templates:
        renderer.compile(name)
    return renderer


class Texts:
    """One language's page texts: ``get(section, key, **values)``."""

    def __init__(self, flat: Mapping[str, str], domain: str) -> None:
        prefix = f"component.{domain}.{TEXT_CATEGORY}.{SECTION_PREFIX}"
        self._texts: dict[tuple[str, str], str] = {}
        for key, text in flat.items():
            if key.startswith(prefix):
                section, _, rest = key.removeprefix(prefix).partition(".options.")
                self._texts[section, rest] = text

    def get(self, section: str, key: str, **values: object) -> str:
        """A text with its placeholders filled in (the key itself when a text is missing)."""
        text = self._texts.get((section, key))
        if text is None:
            return key
        return text.format(**values) if values else text


def qr_svg(url: str) -> Markup:
    """A QR code of ``url`` as an inline SVG element (segno writes no text of the URL)."""
    svg = segno.make(url, error="m").svg_inline(
        scale=1, border=QR_BORDER, omitsize=True, dark="#000", light="#fff"
    )
    # segno's own markup: the URL is only in the modules' geometry, never as text.
    return Markup(svg)


class QrCodes:
    """QR codes as drawn by ``qr_svg``, by content; the ``size`` used last are kept.

    Drawing one costs about 9 ms of CPU. A poster's code never changes and a display's changes
    once per interval, so each is drawn once, not once per request.
    """

    def __init__(self, size: int = QR_CACHE_SIZE) -> None:
        self._size = size
        self._svgs: OrderedDict[str, Markup] = OrderedDict()

    def get(self, url: str) -> Markup | None:
        """The code of ``url`` if drawn (it is then kept the longest)."""
        svg = self._svgs.get(url)
        if svg is not None:
            self._svgs.move_to_end(url)
        return svg

    def add(self, url: str, svg: Markup) -> None:
        """Keep a drawn code (forgetting the one used least recently past ``size``)."""
        self._svgs[url] = svg
        self._svgs.move_to_end(url)
        while len(self._svgs) > self._size:
            self._svgs.popitem(last=False)


def qr_png(url: str, scale: int = 10) -> bytes:
    """A QR code of ``url`` as PNG (blocking; pure Python)."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=scale, border=QR_BORDER)
    return out.getvalue()


class Renderer:
    """The templates, compiled once."""

    def __init__(self, templates: Mapping[str, str]) -> None:
        self._env = Environment(
            loader=DictLoader(dict(templates)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.globals["rupees"] = rupees

    def compile(self, template: str) -> None:
        """Compile a template now (jinja2 keeps it) rather than at its first use."""
        self._env.get_template(template)

    def render(self, template: str, texts: Texts, **context: Any) -> str:
        """One page in one language."""
        t: Callable[..., str] = texts.get
        return self._env.get_template(template).render(t=t, **context)

    def render_bilingual(self, template: str, english: Texts, hindi: Texts, **context: Any) -> str:
        """A page read by anyone passing (the poster, the display): English and Hindi at once."""
        return self._env.get_template(template).render(en=english.get, hi=hindi.get, **context)
