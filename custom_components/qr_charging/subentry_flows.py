"""The plan and bay subentry flows of an account: one form for adding and editing each."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.helpers import selector
from homeassistant.util.ulid import ulid_now

from .account_api import api_for
from .bay_fields import (
    SECTION_QR,
    bay_site,
    qr_section,
    relay_fields,
    relay_of,
    site_defaults,
    site_fields,
)
from .catalog import (
    CONF_BANDS,
    DEFAULT_HOLD_MINUTES,
    DEFAULT_MAX_MINUTES,
    DEFAULT_OWNER_MINUTES,
    bay_from_data,
    bay_to_data,
    make_bay,
    make_energy_plan,
    make_plan,
    make_rate_plan,
    plan_to_data,
    rupees_to_paise,
    with_bands,
    with_screen_secrets,
)
from .catalog_errors import (
    CatalogError,
    check_id,
)
from .const import (
    CONF_BAY_ID,
    CONF_CODE,
    CONF_DEFAULT_MINUTES,
    CONF_DRIVER,
    CONF_DYNAMIC_QR,
    CONF_HOLD_MINUTES,
    CONF_MAX_MINUTES,
    CONF_MIN_MINUTES,
    CONF_MINUTES,
    CONF_NAME,
    CONF_PLANS,
    CONF_PRICE,
    CONF_PRICE_PAISE,
    CONF_QR_VALIDITY,
    CONF_RATE,
    CONF_STATIC_QR,
    LOGGER,
    PLAN_SUBENTRIES,
    SUBENTRY_BAY,
    SUBENTRY_ENERGY_PLAN,
    SUBENTRY_PLAN,
    SUBENTRY_RATE_PLAN,
)
from .flow_fields import TEXT, flatten, whole_minutes, whole_number
from .hub import plans_of
from .meter_fields import SECTION_METER, meter_defaults, meter_section, metering
from .razorpay_api import RazorpayAuthError, RazorpayConnectionError, RazorpayError
from .relays import (
    DRIVER_MQTT,
    DRIVER_SWITCH,
)
from .site_clock import sites_of
from .static_qr import qr_notes
from .totp import DEFAULT_VALIDITY_S

_MINUTES = whole_number(1, 1440, "min")
_RUPEES = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=0, step=0.01, mode=selector.NumberSelectorMode.BOX, unit_of_measurement="₹"
    )
)
RELAY_KINDS = (DRIVER_MQTT, DRIVER_SWITCH)


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

    def _build(self, entered: dict[str, Any], item_id: str) -> dict[str, Any]:
        """Validate the input; return the subentry data or raise CatalogError."""
        raise NotImplementedError  # pragma: no cover - each flow defines it

    def _defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The edit form's values for the stored data (prices shown in rupees)."""
        raise NotImplementedError  # pragma: no cover - each flow defines it

    def _entered(self, user_input: dict[str, Any]) -> dict[str, Any]:
        """The form's input as one flat mapping (a flow with sections lifts their fields)."""
        return user_input

    async def _async_complete(
        self, entered: dict[str, Any], data: dict[str, Any], before: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Finish what the form asked for that needs Razorpay; raise CatalogError if refused."""
        return data

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add one."""
        return await self._async_add("user", user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit one."""
        return await self._async_edit("reconfigure", user_input)

    async def _async_add(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            entered = self._entered(user_input)
            try:
                item_id = check_id(
                    self.id_field,
                    entered[self.id_field].strip(),
                    self._taken_ids(except_id=None),
                )
                data = await self._async_complete(entered, self._build(entered, item_id), None)
            except CatalogError as err:
                errors[self._error_field(err)] = err.key
            else:
                return self.async_create_entry(title=data[CONF_NAME], data=data, unique_id=item_id)
        return self._form(step_id, user_input or {}, errors, editing=False)

    async def _async_edit(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        """Its id stays, since sessions and links refer to it."""
        subentry = self._get_reconfigure_subentry()
        item_id = subentry.data[self.id_field]
        errors: dict[str, str] = {}
        if user_input is not None:
            entered = self._entered(user_input)
            try:
                data = await self._async_complete(
                    entered, self._build(entered, item_id), subentry.data
                )
            except CatalogError as err:
                errors[self._error_field(err)] = err.key
            else:
                return self.async_update_and_abort(
                    self._get_entry(), subentry, title=data[CONF_NAME], data=data
                )
        return self._form(
            step_id, user_input or self._defaults(subentry.data), errors, editing=True
        )

    def _form(
        self, step_id: str, values: Mapping[str, Any], errors: dict[str, str], *, editing: bool
    ) -> SubentryFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                self._schema(values, editing=editing), values
            ),
            errors=errors,
        )


class PlanSubentryFlow(_CatalogSubentryFlow):
    """A plan: code, name, minutes, price in rupees (stored as integer paise)."""

    subentry_type = SUBENTRY_PLAN
    id_field = CONF_CODE
    id_scope = PLAN_SUBENTRIES

    def _schema(self, defaults: Mapping[str, Any], *, editing: bool) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {} if editing else {vol.Required(CONF_CODE): TEXT}
        fields[vol.Required(CONF_NAME)] = TEXT
        fields[vol.Required(CONF_MINUTES)] = _MINUTES
        fields[vol.Required(CONF_PRICE)] = _RUPEES
        fields[vol.Optional(CONF_BANDS)] = TEXT
        return vol.Schema(fields)

    def _defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {**data, CONF_PRICE: data[CONF_PRICE_PAISE] / 100}

    def _build(self, entered: dict[str, Any], item_id: str) -> dict[str, Any]:
        plan = make_plan(
            item_id,
            str(entered[CONF_NAME]),
            whole_minutes(CONF_MINUTES, entered[CONF_MINUTES]),
            rupees_to_paise(entered[CONF_PRICE]),
        )
        return plan_to_data(with_bands(plan, entered.get(CONF_BANDS, "")))


class RatePlanSubentryFlow(_CatalogSubentryFlow):
    """A plan priced per minute: the customer chooses the minutes, within the plan's bounds."""

    subentry_type = SUBENTRY_RATE_PLAN
    id_field = CONF_CODE
    id_scope = PLAN_SUBENTRIES
    price_field = CONF_RATE

    def _schema(self, defaults: Mapping[str, Any], *, editing: bool) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {} if editing else {vol.Required(CONF_CODE): TEXT}
        fields[vol.Required(CONF_NAME)] = TEXT
        fields[vol.Required(CONF_RATE)] = _RUPEES
        fields[vol.Required(CONF_MIN_MINUTES)] = _MINUTES
        fields[vol.Required(CONF_MAX_MINUTES)] = _MINUTES
        fields[vol.Optional(CONF_BANDS)] = TEXT
        return vol.Schema(fields)

    def _defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {**data, CONF_RATE: data["rate_paise"] / 100}

    def _build(self, entered: dict[str, Any], item_id: str) -> dict[str, Any]:
        plan = make_rate_plan(
            item_id,
            str(entered[CONF_NAME]),
            rupees_to_paise(entered[CONF_RATE]),
            whole_minutes(CONF_MIN_MINUTES, entered[CONF_MIN_MINUTES]),
            whole_minutes(CONF_MAX_MINUTES, entered[CONF_MAX_MINUTES]),
        )
        return plan_to_data(with_bands(plan, entered.get(CONF_BANDS, "")))


class EnergyPlanSubentryFlow(_CatalogSubentryFlow):
    """A plan priced per kWh: the customer pays an amount within bounds, which buys energy."""

    subentry_type = SUBENTRY_ENERGY_PLAN
    id_field = CONF_CODE
    id_scope = PLAN_SUBENTRIES

    def _schema(self, defaults: Mapping[str, Any], *, editing: bool) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {} if editing else {vol.Required(CONF_CODE): TEXT}
        fields[vol.Required(CONF_NAME)] = TEXT
        for key in (CONF_PRICE, "min_amount", "max_amount"):
            fields[vol.Required(key)] = _RUPEES
        fields[vol.Required(CONF_MINUTES)] = _MINUTES
        fields[vol.Optional(CONF_BANDS)] = TEXT
        return vol.Schema(fields)

    def _defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **data,
            CONF_PRICE: data["price_per_kwh_paise"] / 100,
            "min_amount": data["min_paise"] / 100,
            "max_amount": data["max_paise"] / 100,
        }

    def _build(self, entered: dict[str, Any], item_id: str) -> dict[str, Any]:
        plan = make_energy_plan(
            item_id,
            str(entered[CONF_NAME]),
            price_per_kwh_paise=rupees_to_paise(entered[CONF_PRICE]),
            min_paise=rupees_to_paise(entered["min_amount"]),
            max_paise=rupees_to_paise(entered["max_amount"]),
            cap_minutes=whole_minutes(CONF_MINUTES, entered[CONF_MINUTES]),
        )
        return plan_to_data(with_bands(plan, entered.get(CONF_BANDS, "")))


class BaySubentryFlow(_CatalogSubentryFlow):
    """A bay: which kind of relay first (a menu), then one form with only that kind's fields."""

    subentry_type = SUBENTRY_BAY
    id_field = CONF_BAY_ID
    _kind = DRIVER_MQTT

    def _plan_codes(self) -> list[str]:
        return [
            sub.data[CONF_CODE]
            for sub in self._get_entry().subentries.values()
            if sub.subentry_type in PLAN_SUBENTRIES
        ]

    def _precondition(self) -> SubentryFlowResult | None:
        """A bay sells plans: none yet, no bay (checked before the kind is asked)."""
        return None if self._plan_codes() else self.async_abort(reason="no_plans")

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add one: first how it is switched."""
        return self._precondition() or self.async_show_menu(
            step_id="user", menu_options=list(RELAY_KINDS)
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit one: how it is switched (the same kind, or another), then its form."""
        return self._precondition() or self.async_show_menu(
            step_id="reconfigure", menu_options=[f"reconfigure_{kind}" for kind in RELAY_KINDS]
        )

    async def async_step_mqtt(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """A bay on a pi-mqtt-relay agent."""
        self._kind = DRIVER_MQTT
        return await self._async_add("mqtt", user_input)

    async def async_step_switch(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """A bay switched by a Home Assistant switch."""
        self._kind = DRIVER_SWITCH
        return await self._async_add("switch", user_input)

    async def async_step_reconfigure_mqtt(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit a bay as one on a pi-mqtt-relay agent."""
        self._kind = DRIVER_MQTT
        return await self._async_edit("reconfigure_mqtt", user_input)

    async def async_step_reconfigure_switch(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit a bay as one switched by a Home Assistant switch."""
        self._kind = DRIVER_SWITCH
        return await self._async_edit("reconfigure_switch", user_input)

    def _schema(self, defaults: Mapping[str, Any], *, editing: bool) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {} if editing else {vol.Required(CONF_BAY_ID): TEXT}
        fields[vol.Required(CONF_NAME)] = TEXT
        fields[vol.Required(CONF_PLANS)] = selector.SelectSelector(
            selector.SelectSelectorConfig(options=self._plan_codes(), multiple=True)
        )
        fields.update(relay_fields(self._kind))
        fields.update(site_fields(sites_of(self._get_entry())))
        for key, default in (
            (CONF_DEFAULT_MINUTES, DEFAULT_OWNER_MINUTES),
            (CONF_MAX_MINUTES, DEFAULT_MAX_MINUTES),
        ):
            fields[vol.Required(key, default=default)] = _MINUTES
        fields[vol.Optional(SECTION_QR)] = qr_section()
        fields[vol.Optional(SECTION_METER)] = meter_section(self._kind)
        return vol.Schema(fields)

    def _defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in data.items() if k != CONF_DRIVER} | site_defaults(data)
        values[SECTION_QR] = {
            CONF_STATIC_QR: bool(data.get("qr_code_id")),
            CONF_HOLD_MINUTES: data.get(CONF_HOLD_MINUTES, DEFAULT_HOLD_MINUTES),
            CONF_DYNAMIC_QR: data.get(CONF_DYNAMIC_QR, False),
            CONF_QR_VALIDITY: data.get(CONF_QR_VALIDITY, DEFAULT_VALIDITY_S),
        }
        values[SECTION_METER] = meter_defaults(data)
        return values

    def _entered(self, user_input: dict[str, Any]) -> dict[str, Any]:
        return flatten(flatten(user_input, SECTION_QR), SECTION_METER)

    async def _async_complete(
        self, entered: dict[str, Any], data: dict[str, Any], before: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The bay's generated secrets (kept when edited), and its static QR code if asked."""
        data = with_screen_secrets(data, before or {})
        return await self._async_static_qr(entered, data, before)

    async def _async_static_qr(
        self, entered: dict[str, Any], data: dict[str, Any], before: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """A static UPI QR code for the bay, made once at Razorpay when it is asked for."""
        if not entered.get(CONF_STATIC_QR):
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

    def _build(self, entered: dict[str, Any], item_id: str) -> dict[str, Any]:
        bay = make_bay(
            item_id,
            str(entered[CONF_NAME]),
            entered[CONF_PLANS],
            self._plan_codes(),
            relay=relay_of(self._kind, entered),
            default_minutes=whole_minutes(CONF_DEFAULT_MINUTES, entered[CONF_DEFAULT_MINUTES]),
            max_minutes=whole_minutes(CONF_MAX_MINUTES, entered[CONF_MAX_MINUTES]),
            dynamic_qr=bool(entered.get(CONF_DYNAMIC_QR)),
            qr_validity_s=whole_minutes(
                CONF_QR_VALIDITY, entered.get(CONF_QR_VALIDITY, DEFAULT_VALIDITY_S)
            ),
            hold_minutes=whole_minutes(
                CONF_HOLD_MINUTES, entered.get(CONF_HOLD_MINUTES, DEFAULT_HOLD_MINUTES)
            ),
            meter=metering(entered),
            **bay_site(sites_of(self._get_entry()), entered),
        )
        return bay_to_data(bay)
