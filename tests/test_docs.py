"""The docs say what the code does: links, anchors, images and the names they use all exist.

Checked for the README, ``docs/*.md``, the changelog, the agent's README and the blueprints:

- every relative link resolves to a file in the repository, and every ``#anchor`` to a heading
  of its page, slugged as GitHub does; every repository path and test module named in
  backticks exists;
- every image shown exists;
- every ``qr_charging.*`` action, ``qr_charging_*`` event, ``<platform>.bay_1_*`` entity id
  and repair id named exists in ``services.yaml``, ``const.py`` and ``strings.json``, and the
  form tables of ``docs/setup.md`` list exactly the fields (labels) of the forms they describe;
- the reference lists every action, event and entity the integration has.

The checker is plain Python over the files (no Home Assistant import); its last tests break a
copy of a doc on purpose and see each kind of problem reported.
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPONENT = ROOT / "custom_components" / "qr_charging"
BLUEPRINTS = sorted((ROOT / "blueprints").rglob("*.yaml"))
DOCS = sorted(
    [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        ROOT / "pi_mqtt_relay" / "README.md",
        *(ROOT / "docs").glob("*.md"),
    ]
)

FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
# ](target) of a link or an image (a badge nests one in the other); reference definitions;
# HTML src= / href=.
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)")
IMAGE_WHOLE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
# This repository's own files by their GitHub address (blueprints' source_url, import badges).
OWN_URL = re.compile(
    r"(?:github\.com/qr-charging/qr_charging/(?:blob|tree)/main|"
    r"raw\.githubusercontent\.com/qr-charging/qr_charging/main)/([\w./-]+)"
)
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HTML_REF = re.compile(r"""<a\b[^>]*?\bhref=["']([^"']+)["']""", re.I)
HTML_IMG = re.compile(r"""<img\b[^>]*?\bsrc=["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
HTML_ANCHOR = re.compile(r"""<a\b[^>]*?\b(?:name|id)=["']([^"']+)["']""", re.I)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)

# Names that look like ours, anywhere in a doc (code blocks included: examples count too).
ACTION = re.compile(r"(?<![\w./-])qr_charging\.([a-z][a-z_]*)\b(?![.<])")
EVENT = re.compile(r"(?<![\w./-])qr_charging_([a-z][a-z_]*)\b(?![.<])")
# The account's tax device, for an account titled *rzp_live_Ab12* (docs/reference.md).
TAX_DEVICE = "rzp_live_ab12_tax"
ENTITY_ID = re.compile(
    rf"\b(sensor|binary_sensor|switch|image)\.(bay_1|shop|{TAX_DEVICE})_([a-z0-9_]+)\b"
)
# An entity by its platform and name in a table row ("| binary sensor *Agent connection* |").
ENTITY_NAMED = re.compile(r"^\| (sensor|binary sensor|switch|image) \*([^*]+)\* \|", re.M)
# A file or folder of this repository named in backticks, and a test module named by its name.
REPO_PATH = re.compile(
    r"`((?:tests|custom_components|devtools|scripts|docs|blueprints|pi_mqtt_relay|benchmarks"
    r"|\.ci|\.github)/[\w./-]*)`"
)
TEST_MODULE = re.compile(r"`(test_\w+\.py)`")
FILE_SUFFIXES = {"zip", "db", "ledger", "yaml", "json", "py", "csv"}
# The tables of docs/setup.md and the forms (strings.json paths) whose fields they list.
FORM_TABLES = {
    "5. Add plans": (
        ("config_subentries", "plan"),
        ("config_subentries", "rate_plan"),
        ("config_subentries", "energy_plan"),  # issue #24
    ),
    "6. Add bays": (("config_subentries", "bay"),),
    "Sites: opening hours and a load cap": (("config_subentries", "site"),),  # issue #25
    "7. Options": (("options",),),
}


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lowercased, punctuation dropped, spaces -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    kept = (
        char
        for char in text
        if char in " -_" or unicodedata.category(char)[0] in "LNM"  # letters, numbers, marks
    )
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every ``#anchor`` of a page: its headings' slugs (repeats numbered) and HTML anchors."""
    seen: dict[str, int] = {}
    found = set(HTML_ANCHOR.findall(text))
    for _, title in HEADING.findall(FENCE.sub("", text)):
        slug = github_slug(title)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _prose(text: str) -> str:
    """The text without code blocks and code spans (a link inside code is not a link)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _link_targets(text: str) -> Iterator[str]:
    prose = IMAGE_WHOLE.sub("", _prose(text))  # an image is checked as an image
    yield from LINK.findall(prose)
    yield from REF_DEF.findall(prose)
    yield from HTML_REF.findall(prose)


def link_problems(doc: Path, text: str, root: Path) -> list[str]:
    """Relative links that lead nowhere, anchors that are no heading, images that are missing."""
    problems = []
    for target in _link_targets(text):
        if SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if not dest.is_relative_to(root.resolve()) or not dest.exists():
            problems.append(f"{doc.name}: link {target!r}: no such file")
            continue
        if anchor and (dest.is_dir() or anchor not in anchors(dest.read_text(encoding="utf-8"))):
            problems.append(f"{doc.name}: link {target!r}: no heading #{anchor}")
    for path in OWN_URL.findall(unquote(text)):
        if not (root / path).exists():
            problems.append(f"{doc.name}: address of {path!r}: no such file in the repository")
    prose = _prose(text)
    for src in IMAGE.findall(prose) + HTML_IMG.findall(prose):
        if not SCHEME.match(src) and not (doc.parent / src.partition("#")[0]).is_file():
            problems.append(f"{doc.name}: image {src!r} does not exist")
    return problems


def path_problems(doc: Path, text: str, root: Path) -> list[str]:
    """Files and folders of the repository a doc names in backticks that are not there."""
    problems = [
        f"{doc.name}: {path} does not exist"
        for path in REPO_PATH.findall(text)
        if not (root / path).exists()
    ]
    problems += [
        f"{doc.name}: no test module {name}"
        for name in TEST_MODULE.findall(text)
        if next((root / "tests").rglob(name), None) is None
    ]
    return problems


def _strings() -> dict[str, object]:
    return dict(json.loads((COMPONENT / "strings.json").read_text(encoding="utf-8")))


def _dig(tree: object, *keys: str) -> dict[str, object]:
    for key in keys:
        assert isinstance(tree, dict)
        tree = tree[key]
    assert isinstance(tree, dict)
    return tree


def code_actions() -> set[str]:
    """The actions ``services.yaml`` declares."""
    return set(yaml.safe_load((COMPONENT / "services.yaml").read_text(encoding="utf-8")))


def code_events() -> set[str]:
    """The bus events ``const.py`` declares (``EVENT_… = f"{DOMAIN}_…"``), without the domain."""
    const = (COMPONENT / "const.py").read_text(encoding="utf-8")
    return set(re.findall(r'^EVENT_\w+: Final = f"\{DOMAIN\}_(\w+)"', const, re.M))


def code_note_keys() -> set[str]:
    """Keys the integration writes into Razorpay's notes (``qr_charging_…``, not events)."""
    source = "".join(p.read_text(encoding="utf-8") for p in COMPONENT.glob("*.py"))
    return set(re.findall(r'^NOTE_\w+ = "qr_charging_(\w+)"', source, re.M))


def site_translation_keys(kind_prefix: str = "Site") -> set[str]:
    """The translation keys of a site's entities: ``SITE_*`` or ``Site*Description``s (or the
    account's tax device's: ``TAX_*`` or ``Tax*``)."""
    keys = set()
    for platform in ("sensor", "binary_sensor"):
        source = (COMPONENT / f"{platform}.py").read_text(encoding="utf-8")
        for name, kind, body in re.findall(r"^(\w+) = (\w+)\((.*?)^\)", source, re.M | re.S):
            if name.startswith(f"{kind_prefix.upper()}_") or kind.startswith(kind_prefix):
                keys |= {
                    f"{platform}.{key}" for key in re.findall(r'translation_key="(\w+)"', body)
                }
    return keys


def code_entity_ids() -> set[str]:
    """The entity ids of a bay named *Bay 1*, a site named *Shop* and the tax device of an
    account titled *rzp_live_Ab12*: platform, then the device's and the entity's names."""
    ids = set()
    site_keys, tax_keys = site_translation_keys(), site_translation_keys("Tax")
    for platform, keys in _dig(_strings(), "entity").items():
        for key in _dig(keys):
            name = str(_dig(keys, key)["name"])
            device = "shop" if f"{platform}.{key}" in site_keys else "bay_1"
            device = TAX_DEVICE if f"{platform}.{key}" in tax_keys else device
            ids.add(f"{platform}.{device}_{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}")
    return ids


def code_entity_names() -> set[str]:
    """Each entity as ``<platform> <name>``, e.g. ``binary_sensor Agent connection``."""
    return {
        f"{platform} {_dig(keys, key)['name']}"
        for platform, keys in _dig(_strings(), "entity").items()
        for key in _dig(keys)
    }


def code_translation_keys() -> set[str]:
    """The translation keys the entity descriptions of the platform modules use."""
    keys = set()
    for platform in ("sensor", "binary_sensor", "switch", "image"):
        source = (COMPONENT / f"{platform}.py").read_text(encoding="utf-8")
        keys |= {f"{platform}.{key}" for key in re.findall(r'translation_key="(\w+)"', source)}
    return keys


def code_repairs() -> set[str]:
    """The repair issues ``strings.json`` translates."""
    return set(_dig(_strings(), "issues"))


def form_labels(*path: str) -> set[str]:
    """The field labels of one form in ``strings.json``, its sections' included.

    The form is its first step; when that is a menu (a bay's kind of relay), every form the
    menu offers.
    """
    steps = _dig(_strings(), *path, "step")
    first = _dig(steps, "init" if path == ("options",) else "user")
    menu = first.get("menu_options")
    forms = [_dig(steps, option) for option in _dig(menu)] if menu else [first]
    parts = [_dig(form, "data") for form in forms] + [
        _dig(part, "data") for form in forms for part in _dig(form.get("sections", {})).values()
    ]
    return {str(label) for part in parts for label in part.values()}


def section(text: str, title: str) -> str:
    """A page's section under the heading ``title``, up to the next heading of its level."""
    match = re.search(rf"^(#+) {re.escape(title)}\s*$", text, re.M)
    if match is None:
        return ""
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, match.end())
    return text[match.end() : end.start() if end else len(text)]


def table_first_cells(text: str) -> list[str]:
    """The first column of every markdown table in ``text``, headers and rules left out."""
    cells = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("|") or re.match(r"^\|[\s:|-]+\|$", line):
            continue
        if index + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[index + 1]):
            continue  # a table's header row
        cells.append(line.split("|")[1].strip())
    return cells


def name_problems(doc: Path, text: str) -> list[str]:
    """Actions, events, entity ids and repairs a doc names that the integration does not have."""
    actions, events, entity_ids = code_actions(), code_events(), code_entity_ids()
    problems = [
        f"{doc.name}: action qr_charging.{name} does not exist"
        for name in ACTION.findall(text)
        if name not in actions and name not in FILE_SUFFIXES
    ]
    problems += [
        f"{doc.name}: event qr_charging_{name} does not exist"
        for name in EVENT.findall(text)
        if name not in events and name not in code_note_keys()
    ]
    problems += [
        f"{doc.name}: entity {platform}.{device}_{name} does not exist"
        for platform, device, name in ENTITY_ID.findall(text)
        if f"{platform}.{device}_{name}" not in entity_ids
    ]
    problems += [
        f"{doc.name}: entity {platform} *{name}* does not exist"
        for platform, name in ENTITY_NAMED.findall(text)
        if f"{platform.replace(' ', '_')} {name}" not in code_entity_names()
    ]
    for cell in table_first_cells(section(text, "Repairs")):
        for repair in re.findall(r"`([a-z_]+?)(?:_<[^>]*>)?`", cell):
            if repair not in code_repairs():
                problems.append(f"{doc.name}: repair {repair} does not exist")
    return problems


def form_problems(text: str) -> list[str]:
    """The setup guide's form tables against the forms: no field missing, none made up."""
    problems = []
    for title, forms in FORM_TABLES.items():
        cells = table_first_cells(section(text, title))
        documented = {label for cell in cells for label in cell.split(", ")}  # "Code, Name"
        labels = set().union(*(form_labels(*form) for form in forms))
        problems += [f"setup.md § {title}: {label!r} is no field" for label in documented - labels]
        problems += [
            f"setup.md § {title}: field {label!r} missing" for label in labels - documented
        ]
    return problems


# -- the docs of this repository ------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS + BLUEPRINTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_anchors_and_images_resolve(doc: Path) -> None:
    assert link_problems(doc, doc.read_text(encoding="utf-8"), ROOT) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_files_named_exist(doc: Path) -> None:
    assert path_problems(doc, doc.read_text(encoding="utf-8"), ROOT) == []


@pytest.mark.parametrize("doc", DOCS + BLUEPRINTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_names_exist_in_the_code(doc: Path) -> None:
    assert name_problems(doc, doc.read_text(encoding="utf-8")) == []


def test_setup_guide_lists_every_field_of_each_form() -> None:
    assert form_problems((ROOT / "docs" / "setup.md").read_text(encoding="utf-8")) == []


def test_reference_names_everything_the_integration_offers() -> None:
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    headed = re.findall(r"^### `qr_charging\.(\w+)`", reference, re.M)
    assert code_actions() - set(headed) == set()
    assert sorted(headed) == sorted(set(headed)), "an action is described twice"
    assert code_events() - set(EVENT.findall(section(reference, "Events"))) == set()
    documented = {
        f"{p}.{d}_{n}"
        for heading in ("Entities of a bay", "Entities of a site", "Entities of the account's tax")
        for p, d, n in ENTITY_ID.findall(section(reference, heading))
    }
    assert code_entity_ids() - documented == set()
    assert (
        code_repairs()
        - {
            repair
            for cell in table_first_cells(section(reference, "Repairs"))
            for repair in re.findall(r"`([a-z_]+?)(?:_<[^>]*>)?`", cell)
        }
        == set()
    )


def test_entity_descriptions_use_the_translated_keys() -> None:
    translated = {f"{p}.{k}" for p, keys in _dig(_strings(), "entity").items() for k in _dig(keys)}
    assert code_translation_keys() == translated


# -- the checker itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("1. Install the integration (HACS)", "1-install-the-integration-hacs"),
        ("The `qr_charging.refund` action", "the-qr_chargingrefund-action"),
        ("Going live", "going-live"),
        ("Broker ACL", "broker-acl"),
        ("What [the tests](x.md) prove", "what-the-tests-prove"),
        ("9. The payment QR code and the poster", "9-the-payment-qr-code-and-the-poster"),
        ("हिन्दी पन्ना", "हिन्दी-पन्ना"),
    ],
)
def test_github_slug(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_repeated_headings_are_numbered() -> None:
    assert anchors("# Notes\n\n## Notes\n\n```\n# not a heading\n```\n### Notes\n") == {
        "notes",
        "notes-1",
        "notes-2",
    }


def test_the_checker_finds_a_broken_copy(tmp_path: Path) -> None:
    """A copy of the docs is clean; the same copy with one of each mistake is not."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    doc = tmp_path / "docs" / "customer.md"
    text = doc.read_text(encoding="utf-8")
    assert link_problems(doc, text, tmp_path) == []
    assert name_problems(doc, text) == []
    assert path_problems(doc, text, ROOT) == []
    broken = (
        text.replace("(exposing-ha.md)", "(exposing-home-assistant.md)", 1)
        .replace("(images/display.png)", "(images/displays.png)", 1)
        .replace("action: qr_charging.bay_links", "action: qr_charging.bay_link", 1)
        + "\nSee [the poster](#the-posters) and [setup](setup.md#7-settings).\n"
        + "It fires `qr_charging_session_over` and sets `sensor.bay_1_minutes_left`.\n"
        + "See `devtools/razorpay_standin/nothing.py` and `test_nothing.py`.\n"
        + "\n| entity | |\n|---|---|\n| sensor *Minutes left* | |\n"
    )
    assert "qr_charging.bay_link\n" in broken
    doc.write_text(broken, encoding="utf-8")
    found = (
        link_problems(doc, broken, tmp_path)
        + name_problems(doc, broken)
        + path_problems(doc, broken, ROOT)
    )
    assert found == [
        "customer.md: link 'exposing-home-assistant.md': no such file",
        "customer.md: link '#the-posters': no heading #the-posters",
        "customer.md: link 'setup.md#7-settings': no heading #7-settings",
        "customer.md: image 'images/displays.png' does not exist",
        "customer.md: action qr_charging.bay_link does not exist",
        "customer.md: event qr_charging_session_over does not exist",
        "customer.md: entity sensor.bay_1_minutes_left does not exist",
        "customer.md: entity sensor *Minutes left* does not exist",
        "customer.md: devtools/razorpay_standin/nothing.py does not exist",
        "customer.md: no test module test_nothing.py",
    ]


def test_the_checker_finds_a_made_up_or_missing_field() -> None:
    """A setup guide written from the forms is clean; one label renamed is reported twice."""
    text = "".join(
        f"## {title}\n\n| field | |\n|---|---|\n"
        + "".join(f"| {label} | |\n" for form in forms for label in sorted(form_labels(*form)))
        + "\n"
        for title, forms in FORM_TABLES.items()
    )
    assert form_problems(text) == []
    renamed = "Refund failed starts automatically"
    assert form_problems(text.replace(f"| {renamed} |", "| Retry count |")) == [
        "setup.md § 7. Options: 'Retry count' is no field",
        f"setup.md § 7. Options: field {renamed!r} missing",
    ]


def test_the_checker_finds_an_unknown_repair() -> None:
    doc = ROOT / "docs" / "reference.md"
    text = doc.read_text(encoding="utf-8").replace("(`webhook_unreachable`)", "(`webhook_down`)")
    assert name_problems(doc, text) == ["reference.md: repair webhook_down does not exist"]
