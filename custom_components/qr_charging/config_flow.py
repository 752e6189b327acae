"""Config flow: a Razorpay account, then its plans and bays as subentries."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
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
    SubentryFlowResult,
)
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
from homeassistant.util.ulid import ulid_now

from . import migration
from .account_api import api_for
from .catalog import (
    DEFAULT_HOLD_MINUTES,
    DEFAULT_MAX_MINUTES,
    DEFAULT_OWNER_MINUTES,
    DEFAULT_PREFIX,
    DRIVER_MQTT,
    DRIVER_SWITCH,
    ID_PATTERN,
    MAX_HOLD_MINUTES,
    MIN_HOLD_MINUTES,
    CatalogError,
    bay_from_data,
    bay_to_data,
    check_id,
    make_bay,
    make_plan,
    make_rate_plan,
    plan_to_data,
    rupees_to_paise,
    with_screen_secrets,
)
from .const import (
    CONF_ACK_TIMEOUT,
    CONF_AGENT_BAY,
    CONF_API_BASE_URL,
    CONF_AUTO_REFUND,
    CONF_BAY_ID,
    CONF_CLOUDHOOK,
    CONF_CODE,
    CONF_DEFAULT_MINUTES,
    CONF_DRIVER,
    CONF_DYNAMIC_QR,
    CONF_HOLD_MINUTES,
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_MAX_MINUTES,
    CONF_MERCHANT_NAME,
    CONF_MIN_MINUTES,
    CONF_MINUTES,
    CONF_NAME,
    CONF_NODE,
    CONF_PLANS,
    CONF_PREFIX,
    CONF_PRICE,
    CONF_PRICE_PAISE,
    CONF_QR_VALIDITY,
    CONF_RATE,
    CONF_STATIC_QR,
    CONF_SWITCH_ENTITY,
    CONF_WEBHOOK_SECRET,
    DEFAULT_ACK_TIMEOUT_S,
    DEFAULT_API_BASE_URL,
    DOMAIN,
    LOGGER,
    PLAN_SUBENTRIES,
    SUBENTRY_BAY,
    SUBENTRY_PLAN,
    SUBENTRY_RATE_PLAN,
)
from .devices import async_remove_stale_devices
from .drivers.mqtt_agent import agent_identifier, parse_config
from .hub import bays_of, plans_of
from .migration import async_pages_data, cloud_component
from .razorpay_api import RazorpayAuthError, RazorpayConnectionError, RazorpayError
from .razorpay_events import SUBSCRIBED_EVENTS
from .static_qr import qr_notes
from .totp import DEFAULT_VALIDITY_S, MAX_VALIDITY_S, MIN_VALIDITY_S

_SECRET = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
_TEXT = selector.TextSelector()
SECTION_ADVANCED = "advanced"


def _whole_number(low: int, high: int, unit: str) -> selector.NumberSelector:
    """A box for a whole number within bounds (minutes, seconds)."""
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=low,
            max=high,
            step=1,
            mode=selector.NumberSelectorMode.BOX,
            unit_of_measurement=unit,
        )
    )


_MINUTES = _whole_number(1, 1440, "min")
_VALIDITY = _whole_number(MIN_VALIDITY_S, MAX_VALIDITY_S, "s")
_HOLD = _whole_number(MIN_HOLD_MINUTES, MAX_HOLD_MINUTES, "min")
_RUPEES = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=0, step=0.01, mode=selector.NumberSelectorMode.BOX, unit_of_measurement="₹"
    )
)


def _keys_schema(defaults: Mapping[str, Any], *, webhook_secret: bool) -> vol.Schema:
    fields: dict[vol.Marker, Any] = {
        vol.Required(CONF_KEY_ID, default=defaults.get(CONF_KEY_ID, vol.UNDEFINED)): _TEXT,
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
        {"collapsed": True},
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
        errors[CONF_API_BASE_URL] = "api_url_not_https"
    return errors


def _flatten(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Form input with the advanced section's fields lifted to the top, strings trimmed."""
    data = {k: v for k, v in user_input.items() if k != SECTION_ADVANCED}
    data.update(user_input.get(SECTION_ADVANCED) or {})
    return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}


def _cloud() -> ModuleType:
    """HA Cloud (imported only when it is loaded)."""
    return cloud_component()


class QrChargingConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a Razorpay account; one entry per key id."""

    VERSION = migration.VERSION
    MINOR_VERSION = migration.MINOR_VERSION
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
        """Plans and bays are added under the account."""
        return {
            SUBENTRY_PLAN: PlanSubentryFlow,
            SUBENTRY_RATE_PLAN: RatePlanSubentryFlow,
            SUBENTRY_BAY: BaySubentryFlow,
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
            user_input = _flatten(user_input)
            await self.async_set_unique_id(user_input[CONF_KEY_ID])
            self._abort_if_unique_id_configured()
            errors = _weak_inputs(user_input)
            if not errors:
                if (error := await self._async_check_keys(user_input)) is None:
                    return await self._async_create_with_webhook(user_input)
                errors["base"] = error
        return self.async_show_form(
            step_id="user",
            data_schema=_keys_schema(user_input or {}, webhook_secret=True),
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
        return self.async_create_entry(
            title=data[CONF_KEY_ID], data=data, description_placeholders=placeholders
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
        await self.async_set_unique_id(agent_identifier(node))
        self._abort_if_unique_id_configured()
        accounts = [e for e in self._async_current_entries(include_ignore=False) if e.data]
        if not accounts:
            return self.async_abort(reason="no_account")
        account = accounts[0]
        if not plans_of(account):
            return self.async_abort(reason="no_plans")
        known = {(b.node, b.agent_bay) for b in bays_of(account).values()}
        self._agent_bays = [
            (str(b["id"]), str(b.get("name") or b["id"]))
            for b in data["bays"]
            if ID_PATTERN.fullmatch(str(b["id"])) and (node, b["id"]) not in known
        ]
        if not self._agent_bays:
            return self.async_abort(reason="already_configured")
        self._agent = (account, prefix, node, str(data.get("name") or node))
        self.context["title_placeholders"] = {"name": self._agent[3]}
        return await self.async_step_mqtt_confirm()

    async def async_step_mqtt_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm: each of the agent's bays becomes a bay offering every plan."""
        account, prefix, node, name = self._agent
        if user_input is None:
            return self.async_show_form(
                step_id="mqtt_confirm",
                description_placeholders={
                    "name": name,
                    "bays": ", ".join(bay_name for _, bay_name in self._agent_bays),
                },
            )
        taken = set(bays_of(account))
        plans = list(plans_of(account))
        bays = []
        for agent_bay, bay_name in self._agent_bays:
            bay_id = agent_bay if agent_bay not in taken else f"{node}-{agent_bay}"
            taken.add(bay_id)
            try:
                bays.append(
                    make_bay(
                        bay_id,
                        bay_name,
                        plans,
                        plans,
                        node=node,
                        agent_bay=agent_bay,
                        prefix=prefix,
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
        entered = _flatten(user_input) if user_input is not None else None
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
            data_schema=_keys_schema(entry.data, webhook_secret=webhook_secret),
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
    """Time to wait for a bay, automatic refunds; shows the webhook URL again."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form, with the webhook URL and events in its description."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        options = self.config_entry.options
        return self.async_show_form(
            step_id="init",
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
                    ): _TEXT,
                }
            ),
        )


class _CatalogSubentryFlow(ConfigSubentryFlow):
    """Shared shape of the plan and bay flows: one form for adding and editing."""

    subentry_type: str
    id_field: str
    # Kinds of subentry whose ids must differ from this one's (fixed and rate plans share codes).
    id_scope: tuple[str, ...] = ()
    # The form field a price error is shown on.
    price_field = CONF_PRICE

    def _taken_ids(self, *, except_id: str | None) -> list[str]:
        scope = self.id_scope or (self.subentry_type,)
        return [
            sub.data[self.id_field]
            for sub in self._get_entry().subentries.values()
            if sub.subentry_type in scope and sub.data[self.id_field] != except_id
        ]

    def _error_field(self, err: CatalogError) -> str:
        return err.field if err.field != "price" else self.price_field

    def _schema(self, defaults: Mapping[str, Any], *, editing: bool) -> vol.Schema:
        raise NotImplementedError  # pragma: no cover - each flow defines it

    def _build(self, user_input: dict[str, Any], item_id: str) -> dict[str, Any]:
        """Validate the input; return the subentry data or raise CatalogError."""
        raise NotImplementedError  # pragma: no cover - each flow defines it

    def _defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The edit form's values for the stored data (prices shown in rupees)."""
        raise NotImplementedError  # pragma: no cover - each flow defines it

    async def _async_complete(
        self, user_input: dict[str, Any], data: dict[str, Any], before: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Finish what the form asked for that needs Razorpay; raise CatalogError if refused."""
        return data

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add one."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                item_id = check_id(
                    self.id_field,
                    user_input[self.id_field].strip(),
                    self._taken_ids(except_id=None),
                )
                data = await self._async_complete(
                    user_input, self._build(user_input, item_id), None
                )
            except CatalogError as err:
                errors[self._error_field(err)] = err.key
            else:
                return self.async_create_entry(title=data[CONF_NAME], data=data, unique_id=item_id)
        return self._form("user", user_input or {}, errors, editing=False)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit one; its id stays, since sessions and links refer to it."""
        subentry = self._get_reconfigure_subentry()
        item_id = subentry.data[self.id_field]
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                data = await self._async_complete(
                    user_input, self._build(user_input, item_id), subentry.data
                )
            except CatalogError as err:
                errors[self._error_field(err)] = err.key
            else:
                return self.async_update_and_abort(
                    self._get_entry(), subentry, title=data[CONF_NAME], data=data
                )
        return self._form(
            "reconfigure", user_input or self._defaults(subentry.data), errors, editing=True
        )

    def _form(
        self, step_id: str, values: Mapping[str, Any], errors: dict[str, str], *, editing: bool
    ) -> SubentryFlowResult:
        if result := self._precondition():
            return result
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                self._schema(values, editing=editing), values
            ),
            errors=errors,
        )

    def _precondition(self) -> SubentryFlowResult | None:
        return None


class PlanSubentryFlow(_CatalogSubentryFlow):
    """A plan: code, name, minutes, price in rupees (stored as integer paise)."""

    subentry_type = SUBENTRY_PLAN
    id_field = CONF_CODE
    id_scope = PLAN_SUBENTRIES

    def _schema(self, defaults: Mapping[str, Any], *, editing: bool) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {} if editing else {vol.Required(CONF_CODE): _TEXT}
        fields[vol.Required(CONF_NAME)] = _TEXT
        fields[vol.Required(CONF_MINUTES)] = _MINUTES
        fields[vol.Required(CONF_PRICE)] = _RUPEES
        return vol.Schema(fields)

    def _defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {**data, CONF_PRICE: data[CONF_PRICE_PAISE] / 100}

    def _build(self, user_input: dict[str, Any], item_id: str) -> dict[str, Any]:
        plan = make_plan(
            item_id,
            str(user_input[CONF_NAME]),
            _whole_minutes(CONF_MINUTES, user_input[CONF_MINUTES]),
            rupees_to_paise(user_input[CONF_PRICE]),
        )
        return plan_to_data(plan)


class RatePlanSubentryFlow(_CatalogSubentryFlow):
    """A plan priced per minute: the customer chooses the minutes, within the plan's bounds."""

    subentry_type = SUBENTRY_RATE_PLAN
    id_field = CONF_CODE
    id_scope = PLAN_SUBENTRIES
    price_field = CONF_RATE

    def _schema(self, defaults: Mapping[str, Any], *, editing: bool) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {} if editing else {vol.Required(CONF_CODE): _TEXT}
        fields[vol.Required(CONF_NAME)] = _TEXT
        fields[vol.Required(CONF_RATE)] = _RUPEES
        fields[vol.Required(CONF_MIN_MINUTES)] = _MINUTES
        fields[vol.Required(CONF_MAX_MINUTES)] = _MINUTES
        return vol.Schema(fields)

    def _defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {**data, CONF_RATE: data["rate_paise"] / 100}

    def _build(self, user_input: dict[str, Any], item_id: str) -> dict[str, Any]:
        plan = make_rate_plan(
            item_id,
            str(user_input[CONF_NAME]),
            rupees_to_paise(user_input[CONF_RATE]),
            _whole_minutes(CONF_MIN_MINUTES, user_input[CONF_MIN_MINUTES]),
            _whole_minutes(CONF_MAX_MINUTES, user_input[CONF_MAX_MINUTES]),
        )
        return plan_to_data(plan)


class BaySubentryFlow(_CatalogSubentryFlow):
    """A bay: id, name, the plans it offers, and its relay (an MQTT agent's or a HA switch)."""

    subentry_type = SUBENTRY_BAY
    id_field = CONF_BAY_ID

    def _plan_codes(self) -> list[str]:
        return [
            sub.data[CONF_CODE]
            for sub in self._get_entry().subentries.values()
            if sub.subentry_type in PLAN_SUBENTRIES
        ]

    def _precondition(self) -> SubentryFlowResult | None:
        return None if self._plan_codes() else self.async_abort(reason="no_plans")

    def _schema(self, defaults: Mapping[str, Any], *, editing: bool) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {} if editing else {vol.Required(CONF_BAY_ID): _TEXT}
        fields[vol.Required(CONF_NAME)] = _TEXT
        fields[vol.Required(CONF_PLANS)] = selector.SelectSelector(
            selector.SelectSelectorConfig(options=self._plan_codes(), multiple=True)
        )
        fields[vol.Required(CONF_DRIVER, default=DRIVER_MQTT)] = selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=[DRIVER_MQTT, DRIVER_SWITCH], translation_key=CONF_DRIVER
            )
        )
        fields[vol.Optional(CONF_NODE)] = _TEXT
        fields[vol.Optional(CONF_AGENT_BAY)] = _TEXT
        fields[vol.Required(CONF_PREFIX, default=DEFAULT_PREFIX)] = _TEXT
        fields[vol.Optional(CONF_SWITCH_ENTITY)] = selector.EntitySelector(
            selector.EntitySelectorConfig(domain="switch")
        )
        for key, default in (
            (CONF_DEFAULT_MINUTES, DEFAULT_OWNER_MINUTES),
            (CONF_MAX_MINUTES, DEFAULT_MAX_MINUTES),
        ):
            fields[vol.Required(key, default=default)] = _MINUTES
        fields[vol.Optional(CONF_STATIC_QR, default=False)] = selector.BooleanSelector()
        fields[vol.Required(CONF_HOLD_MINUTES, default=DEFAULT_HOLD_MINUTES)] = _HOLD
        fields[vol.Optional(CONF_DYNAMIC_QR, default=False)] = selector.BooleanSelector()
        fields[vol.Required(CONF_QR_VALIDITY, default=DEFAULT_VALIDITY_S)] = _VALIDITY
        return vol.Schema(fields)

    def _defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {**data, CONF_STATIC_QR: bool(data.get("qr_code_id"))}

    async def _async_complete(
        self, user_input: dict[str, Any], data: dict[str, Any], before: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The bay's generated secrets (kept when edited), and its static QR code if asked."""
        data = with_screen_secrets(data, before or {})
        return await self._async_static_qr(user_input, data, before)

    async def _async_static_qr(
        self, user_input: dict[str, Any], data: dict[str, Any], before: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """A static UPI QR code for the bay, made once at Razorpay when it is asked for."""
        if not user_input.get(CONF_STATIC_QR):
            return data
        bay = bay_from_data(data)
        entry = self._get_entry()
        if bay.rate_plan(plans_of(entry)) is None:
            raise CatalogError(CONF_STATIC_QR, "static_qr_needs_rate_plan")
        if before is not None and before.get("qr_code_id"):
            kept = {
                k: before[k] for k in ("qr_code_id", "qr_image_url", "qr_code_tag") if k in before
            }
            return {**data, **kept}
        # A new code (a first one, or after the option was unticked): the account closes the
        # bay's old one at its next load (``qr_codes``); the tag tells their payments apart.
        tag = ulid_now()
        api = api_for(entry.data)
        try:
            qr = await self.hass.async_add_executor_job(
                partial(
                    api.create_qr_code,
                    name=bay.name[:40],
                    description=bay.name[:100],
                    notes=qr_notes(bay, tag),
                )
            )
        except RazorpayAuthError as err:
            raise CatalogError(CONF_STATIC_QR, "invalid_auth") from err
        except RazorpayConnectionError as err:
            raise CatalogError(CONF_STATIC_QR, "cannot_connect") from err
        except RazorpayError as err:
            # Razorpay answers accounts without the QR code feature with a 400.
            LOGGER.warning("Razorpay refused a QR code for bay %s: %s", bay.bay_id, err)
            raise CatalogError(CONF_STATIC_QR, "static_qr_unavailable") from err
        finally:
            api.close()
        return {
            **data,
            "qr_code_id": qr["id"],
            "qr_image_url": qr.get("image_url"),
            "qr_code_tag": tag,
        }

    def _build(self, user_input: dict[str, Any], item_id: str) -> dict[str, Any]:
        bay = make_bay(
            item_id,
            str(user_input[CONF_NAME]),
            user_input[CONF_PLANS],
            self._plan_codes(),
            driver=user_input[CONF_DRIVER],
            node=(user_input.get(CONF_NODE) or "").strip() or None,
            agent_bay=(user_input.get(CONF_AGENT_BAY) or "").strip() or None,
            prefix=(user_input.get(CONF_PREFIX) or DEFAULT_PREFIX).strip(),
            switch_entity=user_input.get(CONF_SWITCH_ENTITY) or None,
            default_minutes=_whole_minutes(CONF_DEFAULT_MINUTES, user_input[CONF_DEFAULT_MINUTES]),
            max_minutes=_whole_minutes(CONF_MAX_MINUTES, user_input[CONF_MAX_MINUTES]),
            dynamic_qr=bool(user_input.get(CONF_DYNAMIC_QR)),
            qr_validity_s=_whole_minutes(
                CONF_QR_VALIDITY, user_input.get(CONF_QR_VALIDITY, DEFAULT_VALIDITY_S)
            ),
            hold_minutes=_whole_minutes(
                CONF_HOLD_MINUTES, user_input.get(CONF_HOLD_MINUTES, DEFAULT_HOLD_MINUTES)
            ),
        )
        return bay_to_data(bay)


def _whole_minutes(field: str, value: Any) -> int:
    """Number selectors give floats; minutes must be whole."""
    minutes = float(value)
    if minutes != int(minutes):
        raise CatalogError(field, "invalid_minutes")
    return int(minutes)
