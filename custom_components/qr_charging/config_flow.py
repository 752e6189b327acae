"""Config flow: a Razorpay account, then its plans and bays as subentries."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType, ModuleType
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol
from homeassistant.components import webhook
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo

from . import migration
from .account_api import api_for
from .agent_prefixes import PrefixError
from .catalog import (
    bay_to_data,
    make_bay,
    with_screen_secrets,
)
from .catalog_errors import (
    ID_PATTERN,
    CatalogError,
)
from .const import (
    CONF_ACK_TIMEOUT,
    CONF_API_BASE_URL,
    CONF_AUTO_REFUND,
    CONF_CLOUDHOOK,
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_MERCHANT_NAME,
    CONF_WEBHOOK_SECRET,
    DEFAULT_ACK_TIMEOUT_S,
    DEFAULT_API_BASE_URL,
    DOMAIN,
    LOGGER,
    SUBENTRY_BAY,
    SUBENTRY_ENERGY_PLAN,
    SUBENTRY_PLAN,
    SUBENTRY_RATE_PLAN,
    SUBENTRY_SITE,
)
from .devices import async_remove_stale_devices
from .drivers.mqtt_agent import parse_config
from .flow_fields import TEXT, flatten
from .hub import agent_relays, bays_of, plans_of
from .migration import async_pages_data, cloud_component, default_site_subentry
from .prefix_fields import prefixes_field, prefixes_option
from .razorpay_api import RazorpayAuthError, RazorpayConnectionError
from .razorpay_events import SUBSCRIBED_EVENTS
from .relays import MqttRelay, agent_identifier, agent_name, discovered_bay_ids
from .site_clock import sites_of
from .site_flows import SiteSubentryFlow
from .subentry_flows import (
    BaySubentryFlow,
    EnergyPlanSubentryFlow,
    PlanSubentryFlow,
    RatePlanSubentryFlow,
)
from .tax import TaxError
from .tax import settings_of as tax_settings_of
from .tax_fields import SECTION_TAX, tax_options, tax_section

_SECRET = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
SECTION_ADVANCED = "advanced"
# The discovery form's field: which account sells at the agent's bays.
CONF_ACCOUNT = "account"


def _keys_schema(
    defaults: Mapping[str, Any], errors: Mapping[str, str], *, webhook_secret: bool
) -> vol.Schema:
    fields: dict[vol.Marker, Any] = {
        vol.Required(CONF_KEY_ID, default=defaults.get(CONF_KEY_ID, vol.UNDEFINED)): TEXT,
        vol.Required(CONF_KEY_SECRET): _SECRET,
    }
    if webhook_secret:
        fields[vol.Required(CONF_WEBHOOK_SECRET)] = _SECRET
    # A collapsed section, not "advanced mode" (deprecated in current HA, where it is always on).
    fields[vol.Optional(SECTION_ADVANCED)] = section(
        vol.Schema(
            {
                vol.Optional(
                    CONF_API_BASE_URL,
                    default=defaults.get(CONF_API_BASE_URL, DEFAULT_API_BASE_URL),
                ): selector.TextSelector(
                    selector.TextSelectorConfig(type=selector.TextSelectorType.URL)
                )
            }
        ),
        # Open when it holds the error, so the owner sees the field to correct.
        {"collapsed": SECTION_ADVANCED not in errors},
    )
    return vol.Schema(fields)


# Anyone who learns the webhook secret can sign deliveries that start bays: no short ones.
MIN_WEBHOOK_SECRET = 12
# Plain http only to this machine (a local stand-in of Razorpay's API): the keys travel in
# every request's Authorization header.
LOCAL_HTTP_HOSTS = frozenset({"127.0.0.1", "localhost"})


def _api_url_allowed(url: str) -> bool:
    """An https address, or http to this machine."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOCAL_HTTP_HOSTS)


def _weak_inputs(entered: Mapping[str, Any]) -> dict[str, str]:
    """Field errors for entered values that would weaken the account.

    Only what was entered is judged (reauth does not show the stored webhook secret), and
    before the keys are sent anywhere.
    """
    errors: dict[str, str] = {}
    secret = entered.get(CONF_WEBHOOK_SECRET)
    if secret is not None and len(secret) < MIN_WEBHOOK_SECRET:
        errors[CONF_WEBHOOK_SECRET] = "webhook_secret_too_short"
    if CONF_API_BASE_URL in entered and not _api_url_allowed(entered[CONF_API_BASE_URL]):
        # On its section: HA's frontend shows no error on a field inside one.
        errors[SECTION_ADVANCED] = "api_url_not_https"
    return errors


def _cloud() -> ModuleType:
    """HA Cloud (imported only when it is loaded)."""
    return cloud_component()


class QrChargingConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a Razorpay account; one entry per key id."""

    VERSION = migration.VERSION
    MINOR_VERSION = migration.MINOR_VERSION
    # The agent's prefix, node, name as shown (``agent_name``) and config.
    _discovered: tuple[str, str, str, dict[str, Any]]
    _agent: tuple[ConfigEntry, str, str, str]
    _agent_bays: list[tuple[str, str]]

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        """How bays start and what happens when they cannot."""
        return QrChargingOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Plans, bays and sites are added under the account."""
        return {
            SUBENTRY_PLAN: PlanSubentryFlow,
            SUBENTRY_RATE_PLAN: RatePlanSubentryFlow,
            SUBENTRY_ENERGY_PLAN: EnergyPlanSubentryFlow,
            SUBENTRY_BAY: BaySubentryFlow,
            SUBENTRY_SITE: SiteSubentryFlow,
        }

    async def _async_check_keys(self, data: Mapping[str, Any]) -> str | None:
        """Make one real API call with the keys; return an error key or None."""
        try:
            await self.hass.async_add_executor_job(api_for(data).verify_keys)
        except RazorpayAuthError:
            return "invalid_auth"
        except RazorpayConnectionError:
            return "cannot_connect"
        except Exception:
            LOGGER.exception("Unexpected error checking Razorpay keys")
            return "unknown"
        return None

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the Razorpay keys and the webhook secret."""
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input = flatten(user_input, SECTION_ADVANCED)
            await self.async_set_unique_id(user_input[CONF_KEY_ID])
            self._abort_if_unique_id_configured()
            errors = _weak_inputs(user_input)
            if not errors:
                if (error := await self._async_check_keys(user_input)) is None:
                    return await self._async_create_with_webhook(user_input)
                errors["base"] = error
        return self.async_show_form(
            step_id="user",
            data_schema=_keys_schema(user_input or {}, errors, webhook_secret=True),
            errors=errors,
        )

    async def _async_create_with_webhook(self, data: dict[str, Any]) -> ConfigFlowResult:
        """Create the entry and show the URL and events to enter in Razorpay's dashboard."""
        data[CONF_WEBHOOK_ID] = webhook.async_generate_id()
        data[CONF_CLOUDHOOK] = "cloud" in self.hass.config.components and (
            _cloud().async_active_subscription(self.hass)
        )
        placeholders = await _async_webhook_placeholders(self.hass, data)
        cloudhook = _cloud().async_get_or_create_cloudhook if data[CONF_CLOUDHOOK] else None
        data.update(await async_pages_data(self.hass, cloudhook))
        # Its default site, as a migrated account has: a fresh account and an old one look alike.
        return self.async_create_entry(
            title=data[CONF_KEY_ID],
            data=data,
            description_placeholders=placeholders,
            subentries=[default_site_subentry()],
        )

    async def async_step_mqtt(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """An agent announced itself on ``<prefix>/<node>/config``: offer to add its bays."""
        prefix, _, rest = discovery_info.topic.partition("/")
        node = rest.removesuffix("/config")
        if not discovery_info.payload:
            # The agent's retained config was cleared: it is retired. Its device goes from
            # every account where no bay uses it (a loaded account has already let go of it).
            for account in self._async_current_entries(include_ignore=False):
                async_remove_stale_devices(self.hass, account)
            return self.async_abort(reason="agent_removed")
        data = parse_config(discovery_info.payload)
        if data is None or data["node"] != node or not ID_PATTERN.fullmatch(node):
            return self.async_abort(reason="invalid_discovery_info")
        # One flow per prefix and node: the same node id under another prefix is another agent.
        await self.async_set_unique_id(agent_identifier(prefix, node))
        self._abort_if_unique_id_configured()
        accounts = [e for e in self._async_current_entries(include_ignore=False) if e.data]
        if not accounts:
            return self.async_abort(reason="no_account")
        name = agent_name(prefix, str(data.get("name") or node))
        self._discovered = (prefix, node, name, data)
        if not self._unsold_bays():
            return self.async_abort(reason="already_configured")
        self.context["title_placeholders"] = {"name": name}
        if len(accounts) > 1:
            return await self.async_step_mqtt_account()
        return await self._async_offer_agent(accounts[0])

    def _unsold_bays(self) -> list[tuple[str, str]]:
        """The discovered agent's bays no account sells yet, each once: (id, name).

        A relay is one account's: each HA start announces every agent again, and a bay may
        be added by hand while this flow waits, so this is read again when it is confirmed.
        """
        prefix, node, _name, data = self._discovered
        known = agent_relays(self._async_current_entries(include_ignore=False))
        unsold: dict[str, str] = {}
        for bay in data["bays"]:
            agent_bay = str(bay["id"])
            if ID_PATTERN.fullmatch(agent_bay) and (prefix, node, agent_bay) not in known:
                unsold.setdefault(agent_bay, str(bay.get("name") or agent_bay))
        self._agent_bays = list(unsold.items())
        return self._agent_bays

    async def async_step_mqtt_account(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Several Razorpay accounts: ask which one sells at the agent's bays."""
        accounts = {
            e.entry_id: e for e in self._async_current_entries(include_ignore=False) if e.data
        }
        if user_input is not None and (account := accounts.get(user_input[CONF_ACCOUNT])):
            return await self._async_offer_agent(account)
        options = [
            selector.SelectOptionDict(value=entry_id, label=account.title)
            for entry_id, account in accounts.items()
        ]
        return self.async_show_form(
            step_id="mqtt_account",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_ACCOUNT): selector.SelectSelector(
                        selector.SelectSelectorConfig(options=options)
                    )
                }
            ),
            description_placeholders=self.context["title_placeholders"],
        )

    async def _async_offer_agent(self, account: ConfigEntry) -> ConfigFlowResult:
        """Offer the agent's bays that no account has yet."""
        prefix, node, name, _data = self._discovered
        if not plans_of(account):
            return self.async_abort(reason="no_plans")
        self._agent = (account, prefix, node, name)
        return await self.async_step_mqtt_confirm()

    async def async_step_mqtt_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm: each agent bay becomes a bay offering every plan, at the first site."""
        account, prefix, node, name = self._agent
        if user_input is None:
            return self.async_show_form(
                step_id="mqtt_confirm",
                description_placeholders={
                    "name": name,
                    "bays": ", ".join(bay_name for _, bay_name in self._agent_bays),
                },
            )
        if not self._unsold_bays():
            return self.async_abort(reason="already_configured")
        taken = set(bays_of(account))
        plans = list(plans_of(account))
        site_id = next(iter(sites_of(account)))
        bays = []
        for agent_bay, bay_name in self._agent_bays:
            ids = discovered_bay_ids(prefix, node, agent_bay)
            bay_id = next((i for i in ids if i not in taken), None)
            if bay_id is None:
                return self.async_abort(
                    reason="bay_id_conflict", description_placeholders={"bay": ids[-1]}
                )
            taken.add(bay_id)
            try:
                bays.append(
                    make_bay(
                        bay_id,
                        bay_name,
                        plans,
                        plans,
                        relay=MqttRelay(node=node, agent_bay=agent_bay, prefix=prefix),
                        site_id=site_id,
                    )
                )
            except CatalogError:
                # e.g. "<node>-<bay>" longer than an id may be: add it by hand instead.
                return self.async_abort(
                    reason="bay_id_conflict", description_placeholders={"bay": bay_id}
                )
        for bay in bays:
            self.hass.config_entries.async_add_subentry(
                account,
                ConfigSubentry(
                    data=MappingProxyType(with_screen_secrets(bay_to_data(bay))),
                    subentry_type=SUBENTRY_BAY,
                    title=bay.name,
                    unique_id=bay.bay_id,
                ),
            )
        return self.async_abort(reason="agent_added", description_placeholders={"name": name})

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Razorpay refused the keys: ask for new ones."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """New key id and secret (Razorpay issues a new pair when keys are regenerated)."""
        entry = self._get_reauth_entry()
        return await self._async_update_keys(
            "reauth_confirm", entry, user_input, webhook_secret=False
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the keys, the webhook secret or (advanced) the API address."""
        entry = self._get_reconfigure_entry()
        return await self._async_update_keys("reconfigure", entry, user_input, webhook_secret=True)

    async def _async_update_keys(
        self,
        step_id: str,
        entry: ConfigEntry,
        user_input: dict[str, Any] | None,
        *,
        webhook_secret: bool,
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        entered = flatten(user_input, SECTION_ADVANCED) if user_input is not None else None
        if entered is not None and not (errors := _weak_inputs(entered)):
            data = {**entry.data, **entered}
            key_id = data[CONF_KEY_ID]
            if key_id != entry.unique_id and any(
                e.unique_id == key_id for e in self._async_current_entries(include_ignore=False)
            ):
                return self.async_abort(reason="already_configured")
            if (error := await self._async_check_keys(data)) is None:
                return self.async_update_reload_and_abort(
                    entry, unique_id=key_id, title=key_id, data=data
                )
            errors["base"] = error
        return self.async_show_form(
            step_id=step_id,
            data_schema=_keys_schema(entry.data, errors, webhook_secret=webhook_secret),
            errors=errors,
            description_placeholders={"key_id": entry.data[CONF_KEY_ID]},
        )


async def _async_webhook_placeholders(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> dict[str, str]:
    """The webhook URL to give Razorpay (made or read again), and the events to tick."""
    webhook_id = data[CONF_WEBHOOK_ID]
    if data.get(CONF_CLOUDHOOK):
        url = await _cloud().async_get_or_create_cloudhook(hass, webhook_id)
    else:
        try:
            # Razorpay calls from the internet: an internal address would never be reached.
            url = webhook.async_generate_url(hass, webhook_id, allow_internal=False)
        except NoURLAvailableError:
            url = webhook.async_generate_path(webhook_id)
    return {"webhook_url": url, "events": ", ".join(SUBSCRIBED_EVENTS)}


class QrChargingOptionsFlow(OptionsFlow):
    """Waiting for a bay, refunds, agent topic prefixes, tax details; the webhook URL again."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form, with the webhook URL and events in its description."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                user_input = prefixes_option(user_input)
                if SECTION_TAX in user_input:
                    others = [
                        tax_settings_of(entry.options)
                        for entry in self.hass.config_entries.async_entries(DOMAIN)
                        if entry.entry_id != self.config_entry.entry_id
                    ]
                    user_input[SECTION_TAX] = tax_options(user_input[SECTION_TAX], others)
            except TaxError as err:
                # HA's frontend shows no error on a field inside a section (its 20250411 of the
                # floor line up to its main of May 2026): the section's own error, whose text
                # names the field, is the closest it allows.
                errors[SECTION_TAX] = err.key
            except PrefixError as err:
                errors[str(err)] = "invalid_prefixes"
            else:
                return self.async_create_entry(data=user_input)
        options = {**self.config_entry.options, **(user_input or {})}
        return self.async_show_form(
            step_id="init",
            errors=errors,
            description_placeholders=await _async_webhook_placeholders(
                self.hass, self.config_entry.data
            ),
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_ACK_TIMEOUT,
                        default=options.get(CONF_ACK_TIMEOUT, DEFAULT_ACK_TIMEOUT_S),
                    ): vol.All(
                        selector.NumberSelector(
                            selector.NumberSelectorConfig(
                                min=5,
                                max=300,
                                step=1,
                                mode=selector.NumberSelectorMode.BOX,
                                unit_of_measurement="s",
                            )
                        ),
                        vol.Coerce(int),
                    ),
                    vol.Required(
                        CONF_AUTO_REFUND, default=options.get(CONF_AUTO_REFUND, True)
                    ): selector.BooleanSelector(),
                    vol.Optional(
                        CONF_MERCHANT_NAME,
                        description={"suggested_value": options.get(CONF_MERCHANT_NAME)},
                    ): TEXT,
                    **prefixes_field(options),
                    # Open when it holds the error, so the owner sees the field to correct.
                    vol.Optional(SECTION_TAX): tax_section(
                        options.get(SECTION_TAX) or {}, collapsed=not errors
                    ),
                }
            ),
        )
