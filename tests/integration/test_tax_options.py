"""The owner's tax details (issue #26): the options form's section *Tax details*.

Through the options flow as the frontend drives it: what is saved (normalised), each refusal
shown on the section with nothing saved, the entry reloaded with ``hub.tax`` in force, the
texts in English and Hindi, and the tax details in the diagnostics.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.translation import async_get_translations
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.tax import TaxSettings
from devtools.razorpay_standin import RazorpayStandin

from .tax_options_helpers import (
    ADDRESS,
    GSTIN_KA,
    GSTIN_MH,
    GSTIN_OFF_BY_ONE,
    LEGAL_NAME,
    form_section,
    options_input,
    tax_section,
)

TAX_ERRORS = (
    "gstin_format",
    "gstin_check",
    "required",
    "too_long",
    "not_printable",
    "state_not_gstin",
    "sac_invalid",
    "rate_unknown",
    "not_confirmed",
    "prefix_invalid",
    "prefix_taken",
    "address_required",
    "address_too_long",
    "address_not_printable",
)


async def _submit(hass: HomeAssistant, entry: MockConfigEntry, tax: dict[str, Any]) -> Any:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input(tax)
    )
    await hass.async_block_till_done()
    return result


async def test_the_section_is_collapsed_with_the_suggestions_to_confirm(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)

    result = await hass.config_entries.options.async_init(config_entry.entry_id)

    tax = form_section(result, "tax")
    assert tax.options == {"collapsed": True}
    fields = {str(key): (key, value) for key, value in tax.schema.schema.items()}
    assert list(fields) == [
        "legal_name", "address", "gstin", "state", "sac", "rate", "confirmed", "prefix"
    ]  # fmt: skip
    suggested = {name: key.description["suggested_value"] for name, (key, _) in fields.items()}
    assert suggested == {
        "legal_name": None,
        "address": None,
        "gstin": None,
        "state": None,
        "sac": "999799",
        "rate": "18",
        "confirmed": False,  # the owner ticks it: no rate is assumed silently
        "prefix": "INV",
    }
    states = fields["state"][1].config["options"]
    assert {"value": "29", "label": "29 \u2013 Karnataka"} in states
    assert len(states) == 37
    rates = fields["rate"][1].config["options"]
    assert [(o["value"], o["label"]) for o in rates] == [
        ("0", "0 %"), ("0.25", "0.25 %"), ("3", "3 %"), ("5", "5 %"), ("12", "12 %"),
        ("18", "18 %"), ("28", "28 %"), ("40", "40 %"),
    ]  # fmt: skip


async def test_a_valid_gstin_is_saved_upper_cased_and_the_entry_reloads(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    typed = tax_section(
        gstin=f" {GSTIN_KA[:5].lower()} {GSTIN_KA[5:]} ",
        legal_name=f"  {LEGAL_NAME}  ",
        prefix="sh1",
        rate="5",
    )

    result = await _submit(hass, loaded_entry, typed)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options["tax"] == tax_section(prefix="SH1", rate="5")
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert loaded_entry.runtime_data.tax == TaxSettings(
        legal_name=LEGAL_NAME,
        gstin=GSTIN_KA,
        sac="999799",
        rate_bp=500,
        prefix="SH1",
        address=ADDRESS,
    )
    # Opened again, the form shows what is stored.
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    shown = {
        str(key): key.description["suggested_value"]
        for key in form_section(result, "tax").schema.schema
    }
    assert shown == tax_section(prefix="SH1", rate="5")


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"gstin": GSTIN_KA[:14]}, "gstin_format", id="gstin-too-short"),
        pytest.param({"gstin": "29ABCDE1234F1ZWX"}, "gstin_format", id="gstin-too-long"),
        pytest.param({"gstin": "2AABCDE1234F1Z5"}, "gstin_format", id="gstin-bad-format"),
        pytest.param({"gstin": GSTIN_OFF_BY_ONE}, "gstin_check", id="check-off-by-one"),
        pytest.param({"state": "27"}, "state_not_gstin", id="state-not-the-gstin-s"),
        pytest.param({"gstin": GSTIN_MH}, "state_not_gstin", id="gstin-not-the-state-s"),
        pytest.param({"sac": "8703"}, "sac_invalid", id="sac-of-goods"),
        pytest.param({"sac": "99979"}, "sac_invalid", id="sac-five-digits"),
        pytest.param({"confirmed": False}, "not_confirmed", id="not-confirmed"),
        pytest.param({"legal_name": ""}, "required", id="legal-name-missing"),
        pytest.param({"legal_name": "x" * 101}, "too_long", id="legal-name-too-long"),
        pytest.param({"legal_name": "Shakti\x00EV"}, "not_printable", id="legal-name-nul"),
        pytest.param({"address": ""}, "address_required", id="address-missing"),
        pytest.param({"address": "y" * 201}, "address_too_long", id="address-too-long"),
        pytest.param({"address": "MG\x07Road"}, "address_not_printable", id="address-bell"),
        pytest.param({"prefix": "INV/1"}, "prefix_invalid", id="prefix-slash"),
        pytest.param({"prefix": "INVOI"}, "prefix_invalid", id="prefix-too-long"),
    ],
)
async def test_each_error_is_shown_and_nothing_is_saved(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    changes: dict[str, Any],
    error: str,
) -> None:
    before = dict(loaded_entry.options)
    entered = tax_section(**changes)

    result = await _submit(hass, loaded_entry, entered)

    assert result["type"] is FlowResultType.FORM
    # HA's frontend shows no error on a field inside a section: the section's error names it.
    assert result["errors"] == {"tax": error}
    assert dict(loaded_entry.options) == before
    assert loaded_entry.runtime_data.tax == TaxSettings()
    # The section opens, with what was typed, to be corrected.
    tax = form_section(result, "tax")
    assert tax.options == {"collapsed": False}
    shown = {str(key): key.description["suggested_value"] for key in tax.schema.schema}
    assert shown == entered
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input(tax_section())
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options["tax"] == tax_section()


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"rate": "7"}, id="rate-not-offered"),
        pytest.param({"rate": 18}, id="rate-not-a-choice"),
        pytest.param({"state": "25"}, id="state-code-gst-lacks"),
    ],
)
async def test_a_value_the_form_does_not_offer_is_refused(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, changes: dict[str, Any]
) -> None:
    """The state and rate are picked from lists: HA's selector refuses anything else."""
    before = dict(loaded_entry.options)
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)

    with pytest.raises(InvalidData) as refused:
        await hass.config_entries.options.async_configure(
            result["flow_id"], options_input(tax_section(**changes))
        )

    assert list(refused.value.path) == ["tax", next(iter(changes))]
    assert dict(loaded_entry.options) == before


async def test_clearing_the_gstin_goes_back_to_receipts(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={**config_entry.options, "tax": tax_section(prefix="SH")}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.runtime_data.tax.registered

    # The frontend leaves an emptied text field out; SAC, rate and state stay as they were.
    receipts = {k: v for k, v in tax_section(prefix="SH").items() if k != "gstin"}
    result = await _submit(hass, config_entry, receipts)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options["tax"] == receipts | {"gstin": ""}
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data.tax == TaxSettings(
        legal_name=LEGAL_NAME, prefix="SH", address=ADDRESS
    )


async def test_without_a_gstin_only_the_name_and_prefix_count(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Receipts: an unconfirmed rate or a goods code is not checked, a bad prefix still is."""
    receipts = {"legal_name": "", "sac": "8703", "confirmed": False, "prefix": "r"}

    result = await _submit(hass, loaded_entry, receipts)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options["tax"] == receipts | {"gstin": "", "prefix": "R", "address": ""}
    assert loaded_entry.runtime_data.tax == TaxSettings(prefix="R")
    result = await _submit(hass, loaded_entry, {"prefix": "R-1"})
    assert result["errors"] == {"tax": "prefix_invalid"}


@pytest.mark.parametrize("language", ["en", "hi"])
async def test_the_section_and_its_errors_are_translated(
    hass: HomeAssistant, language: str
) -> None:
    strings = await async_get_translations(hass, language, "options", [DOMAIN])
    prefix = f"component.{DOMAIN}.options"
    for key in TAX_ERRORS:
        assert strings[f"{prefix}.error.{key}"]
    section = f"{prefix}.step.init.sections.tax"
    assert strings[f"{section}.name"]
    assert strings[f"{section}.description"]
    for field in ("legal_name", "address", "gstin", "state", "sac", "rate", "confirmed", "prefix"):
        assert strings[f"{section}.data.{field}"]
        assert strings[f"{section}.data_description.{field}"]


async def test_diagnostics_show_the_tax_details_in_force(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    assert diagnostics["tax"] == {
        "registered": False,
        "legal_name": "",
        "gstin": "",
        "state": "",
        "sac": "",
        "rate": "",
        "prefix": "INV",
    }

    await _submit(hass, loaded_entry, tax_section(gstin=GSTIN_MH, state="27", rate="0.25"))
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)

    assert diagnostics["tax"] == {
        "registered": True,
        "legal_name": LEGAL_NAME,
        "gstin": GSTIN_MH,  # public: every invoice prints it
        "state": "27",
        "sac": "999799",
        "rate": "0.25",
        "prefix": "INV",
    }
    assert diagnostics["entry"]["options"]["tax"]["gstin"] == GSTIN_MH  # type: ignore[index]
    text = json.dumps(diagnostics)
    for secret in (standin.key_id, standin.key_secret):
        assert secret not in text


async def test_tax_details_stored_by_hand_and_bad_issue_receipts_and_say_so(
    hass: HomeAssistant, config_entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """Options edited by hand (a GSTIN's check character off): the account still loads,
    issues receipts, and the log says why."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={**config_entry.options, "tax": tax_section(gstin=GSTIN_OFF_BY_ONE)}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    assert config_entry.state is ConfigEntryState.LOADED
    assert not config_entry.runtime_data.tax.registered
    assert "The tax details in the options are not valid" in caplog.text


async def test_tax_details_no_longer_valid_raise_a_repair_until_corrected(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """Details saved with a GSTIN before the address was required: receipts are issued, and a
    repair names the problem in the form's words until the owner saves valid ones."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={**config_entry.options, "tax": tax_section(address="")}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    issues = ir.async_get(hass)
    issue_id = f"tax_details_invalid_{config_entry.entry_id}"

    assert not config_entry.runtime_data.tax.registered
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert (issue.translation_key, issue.severity) == (
        "tax_details_invalid",
        ir.IssueSeverity.ERROR,
    )
    errors = await async_get_translations(hass, "en", "options", [DOMAIN])
    assert issue.translation_placeholders == {
        "account": config_entry.title,
        "problem": errors[f"component.{DOMAIN}.options.error.address_required"],
    }
    for lang in ("en", "hi"):
        texts = await async_get_translations(hass, lang, "issues", [DOMAIN])
        description = texts[f"component.{DOMAIN}.issues.tax_details_invalid.description"]
        assert "{problem}" in description, lang

    result = await _submit(hass, config_entry, tax_section())

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.runtime_data.tax.registered
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_the_tax_details_repair_goes_with_the_account(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={**config_entry.options, "tax": tax_section(confirmed=False)}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    issue_id = f"tax_details_invalid_{config_entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    assert await hass.config_entries.async_remove(config_entry.entry_id)
    await hass.async_block_till_done()

    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_two_accounts_with_one_gstin_must_number_with_their_own_prefixes(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Each account numbers its own documents: one GSTIN with one prefix twice would repeat
    numbers (Rule 46(b)), so the second account's form refuses it and saves nothing."""
    other = MockConfigEntry(
        domain=DOMAIN, title="second", options={"tax": tax_section(prefix="SH")}
    )
    other.add_to_hass(hass)
    before = dict(loaded_entry.options)

    result = await _submit(hass, loaded_entry, tax_section(prefix="sh"))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"tax": "prefix_taken"}
    assert dict(loaded_entry.options) == before

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input(tax_section(prefix="SH2"))
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options["tax"]["prefix"] == "SH2"
