"""Fuzzing the webhook (hypothesis), over HTTP into the real integration.

- Anything unsigned, or signed wrongly, whatever its body and headers: never a 5xx, and
  nothing recorded (no event, no payment, no session).
- Signed but odd payloads (fields missing, of the wrong type, huge numbers, unknown events):
  never a 5xx, and a session starts only for a captured payment of one of our links, for its
  amount, in rupees.

Example counts are modest by default, larger with ``--soak N`` (``tests/soak.py``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from homeassistant.core import HomeAssistant
from hypothesis import given
from hypothesis import strategies as st
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN, MAX_WEBHOOK_BODY
from custom_components.qr_charging.razorpay_events import PAYMENT_EVENTS
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.fixtures import sign
from tests.soak import examples

from .const import WEBHOOK_SECRET
from .helpers import PostWebhook, create_link

header_text = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=80
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers()
    | st.sampled_from([10**30, -1, 0, 2**63])
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.sampled_from(
        [
            b"",
            b"{}",
            b'{"event": "payment.captured", "payload": {}}',
            b"\xff\xfe",
            b"[" * 50_000,
            b"x" * (MAX_WEBHOOK_BODY + 1),
        ]
    ),
)


async def _recorded(entry: MockConfigEntry) -> dict[str, Any]:
    counts = await entry.runtime_data.books.store.async_counts()
    return {
        "events": counts["events"]["stored"],
        **{table: sum(counts[table].values()) for table in ("payments", "sessions", "refunds")},
    }


@examples(40)
@given(
    body=bodies,
    signature=st.one_of(
        st.none(),
        header_text,
        st.sampled_from(["sha256=", "0" * 64, "é" * 64, " " * 64]),
        st.just("wrong-secret"),
        st.just("other-body"),
    ),
    event_id=st.none() | header_text,
    content_type=st.sampled_from(["application/json", "text/plain", "", "multipart/form-data"]),
)
async def test_unsigned_deliveries_record_nothing_and_never_fail(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    post_webhook: PostWebhook,
    body: bytes,
    signature: str | None,
    event_id: str | None,
    content_type: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if signature == "wrong-secret":
        signature = sign(body, WEBHOOK_SECRET + "x")
    elif signature == "other-body":
        signature = sign(body + b" ", WEBHOOK_SECRET)
    if signature is not None:
        headers["X-Razorpay-Signature"] = signature
    if event_id is not None:
        headers["X-Razorpay-Event-Id"] = event_id
    before = await _recorded(loaded_entry)

    response = await post_webhook(body=body, headers=headers)

    assert response.status in (401, 413), await response.text()
    assert await _recorded(loaded_entry) == before


# -- signed, odd payloads ---------------------------------------------------------------------

PATHS = [
    ("event",),
    ("payload",),
    ("payload", "payment"),
    ("payload", "payment", "entity"),
    ("payload", "payment", "entity", "id"),
    ("payload", "payment", "entity", "amount"),
    ("payload", "payment", "entity", "currency"),
    ("payload", "payment", "entity", "status"),
    ("payload", "payment", "entity", "notes"),
    ("payload", "payment", "entity", "description"),
    ("payload", "payment", "entity", "created_at"),
    ("payload", "payment_link", "entity"),
    ("payload", "payment_link", "entity", "id"),
    ("payload", "payment_link", "entity", "reference_id"),
    ("payload", "order", "entity", "receipt"),
    ("payload", "refund", "entity"),
    ("created_at",),
]
changes = st.one_of(
    st.just(("delete",)),
    st.tuples(st.just("set"), json_values),
    st.tuples(
        st.just("set"),
        st.sampled_from(
            [
                "payment.captured",
                "payment.authorized",
                "payment.failed",
                "order.paid",
                "refund.processed",
                "payment_link.cancelled",
                "qr_code.credited",
                "captured",
                "authorized",
                "USD",
                "inr",
                1,
                10**30,
                -100,
                "2000",
                2000.0,
                True,
            ]
        ),
    ),
)


def _mutate(payload: dict[str, Any], path: tuple[str, ...], change: tuple[Any, ...]) -> None:
    target: Any = payload
    for key in path[:-1]:
        if not isinstance(target, dict) or key not in target:
            return
        target = target[key]
    if not isinstance(target, dict):
        return
    if change[0] == "delete":
        target.pop(path[-1], None)
    else:
        target[path[-1]] = copy.deepcopy(change[1])


@examples(40)
@given(
    event=st.sampled_from(["payment_link_paid", "payment_captured", "order_paid"]),
    mutations=st.lists(st.tuples(st.sampled_from(PATHS), changes), max_size=3),
)
async def test_odd_signed_payloads_start_nothing_but_a_real_payment_of_ours(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    event: str,
    mutations: list[tuple[tuple[str, ...], tuple[Any, ...]]],
) -> None:
    # Each example sells to a free bay: the sessions of earlier ones would add up past the
    # bay's longest session, and the action sells no top-up past it.
    if loaded_entry.runtime_data.bays.runners["bay-1"].session is not None:
        stop = {"bay": "bay-1", "refund": "none"}
        await hass.services.async_call(DOMAIN, "stop_session", stop, blocking=True)
        await hass.async_block_till_done()
    link = await create_link(hass)
    paid = standin.pay_link(link["id"])
    payload = getattr(paid, event)().payload
    for path, change in mutations:
        _mutate(payload, path, change)
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Razorpay-Signature": sign(body, WEBHOOK_SECRET),
    }

    response = await post_webhook(body=body, headers=headers)

    assert response.status == 200, await response.text()
    outcome = (await response.json())["outcome"]
    if outcome != "new_session":
        return
    # It started a session: then it is a captured payment of this link, for its amount.
    entity = payload["payload"]["payment"]["entity"]
    assert payload["event"] in PAYMENT_EVENTS
    assert entity["status"] == "captured"
    assert entity["amount"] == link["amount"]
    assert type(entity["amount"]) is int
    assert entity["currency"] == "INR"
    ledger = loaded_entry.runtime_data.books.ledger
    assert entity["id"] in ledger.payments
    assert ledger.payments[entity["id"]].link_id == link["id"]
