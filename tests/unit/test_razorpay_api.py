"""RazorpayApi, through the real razorpay SDK, over HTTP to the local Razorpay stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable, Generator
from typing import Any

import certifi
import pytest
import requests
from razorpay.errors import BadRequestError

from custom_components.qr_charging.razorpay_api import (
    RazorpayApi,
    RazorpayAuthError,
    RazorpayConnectionError,
    RazorpayError,
    RazorpayRequestError,
    RazorpayTimeoutError,
)
from devtools.razorpay_standin import RazorpayStandin, sign
from devtools.razorpay_standin.fixtures import FIXTURES_DIR, load

TIMEOUT = 0.5  # the client's timeout in these tests, seconds
SLOW = 3.0  # a delay that outlasts it


async def run[T](func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking RazorpayApi call off the event loop the stand-in serves on."""
    return await asyncio.to_thread(func, *args, **kwargs)


# The ``standin`` fixture (a started RazorpayStandin) comes from tests/conftest.py.


@pytest.fixture
def api(standin: RazorpayStandin) -> Generator[RazorpayApi]:
    client = RazorpayApi(
        standin.key_id, standin.key_secret, base_url=standin.base_url, timeout=TIMEOUT
    )
    yield client
    client.close()


def link_args(reference_id: str = "s-0001", **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "amount": 2500,
        "currency": "INR",
        "reference_id": reference_id,
        "description": "Bay 1: 30 minutes",
        "notes": {"bay": "bay-1", "plan": "30m"},
        "expire_by": int(time.time()) + 20 * 60,
    }
    return args | overrides


async def paid_link(api: RazorpayApi, standin: RazorpayStandin, method: str = "upi") -> Any:
    link = await run(api.create_payment_link, **link_args())
    return standin.pay_link(link["id"], method)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- keys and reachability ------------------------------------------------------------------


async def test_verify_keys_ok(api: RazorpayApi, standin: RazorpayStandin) -> None:
    await run(api.verify_keys)
    [call] = standin.calls
    assert (call.method, call.path) == ("GET", "/v1/payment_links")
    assert call.headers["Authorization"].startswith("Basic ")


async def test_wrong_keys_are_an_auth_error(standin: RazorpayStandin) -> None:
    api = RazorpayApi(standin.key_id, "wrong", base_url=standin.base_url, timeout=TIMEOUT)
    with pytest.raises(RazorpayAuthError, match="Authentication failed") as caught:
        await run(api.verify_keys)
    assert not isinstance(caught.value, RazorpayRequestError)
    assert "wrong" not in str(caught.value)
    api.close()


async def test_nothing_listening_is_a_connection_error(socket_enabled: None) -> None:
    api = RazorpayApi("k", "s", base_url=f"http://127.0.0.1:{closed_port()}", timeout=TIMEOUT)
    with pytest.raises(RazorpayConnectionError) as caught:
        await run(api.verify_keys)
    assert not isinstance(caught.value, RazorpayTimeoutError)


async def test_invalid_base_url_is_a_connection_error(socket_enabled: None) -> None:
    api = RazorpayApi("k", "s", base_url="http://127.0.0.1:99999", timeout=TIMEOUT)
    with pytest.raises(RazorpayConnectionError):
        await run(api.verify_keys)


async def test_connect_timeout_is_not_an_unknown_outcome(
    api: RazorpayApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connect timeout sent nothing: a connection error, not a timeout of unknown outcome."""

    def connect_timeout(*args: Any, **kwargs: Any) -> requests.Response:
        raise requests.ConnectTimeout("connect timed out")

    monkeypatch.setattr(requests.Session, "request", connect_timeout)
    with pytest.raises(RazorpayConnectionError) as caught:
        await run(api.verify_keys)
    assert not isinstance(caught.value, RazorpayTimeoutError)


async def test_timeout_applies_to_every_call(api: RazorpayApi, standin: RazorpayStandin) -> None:
    standin.delay_next("/v1/payments", SLOW)
    started = time.monotonic()
    with pytest.raises(RazorpayTimeoutError, match="did not answer"):
        await run(api.fetch_payment, "pay_whatever")
    assert time.monotonic() - started < SLOW - 1


async def test_requests_get_certifi_bundle_and_timeout(
    api: RazorpayApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the SDK hands to requests: certifi's CA bundle (not its own) and a timeout."""
    seen: list[dict[str, Any]] = []
    original = requests.Session.request

    def spy(self: requests.Session, *args: Any, **kwargs: Any) -> requests.Response:
        seen.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    await run(api.verify_keys)
    await run(api.find_payment_link, "nothing")
    assert len(seen) == 2
    for kwargs in seen:
        assert kwargs["verify"] == certifi.where()
        assert not kwargs["verify"].endswith("razorpay/ca-bundle.crt")
        assert kwargs["timeout"] == TIMEOUT


# -- payment links ----------------------------------------------------------------------------


async def test_create_payment_link(api: RazorpayApi, standin: RazorpayStandin) -> None:
    args = link_args()
    link = await run(api.create_payment_link, **args)

    [call] = standin.calls_to("POST", "/v1/payment_links")
    assert call.json == {
        "amount": 2500,
        "currency": "INR",
        "accept_partial": False,
        "reference_id": "s-0001",
        "description": "Bay 1: 30 minutes",
        "expire_by": args["expire_by"],
        "notes": {"bay": "bay-1", "plan": "30m"},
        "notify": {"sms": False, "email": False},
        "reminder_enable": False,
    }
    assert type(call.json["amount"]) is int
    assert link["id"].startswith("plink_")
    assert link["status"] == "created"
    assert link["short_url"] == f"{standin.base_url}/pay/{link['id']}"
    assert link == standin.links[link["id"]]
    assert await run(api.fetch_payment_link, link["id"]) == link
    assert await run(api.find_payment_link, "s-0001") == link


async def test_create_payment_link_with_callback(
    api: RazorpayApi, standin: RazorpayStandin
) -> None:
    await run(api.create_payment_link, **link_args(callback_url="https://ha.example/done"))
    [call] = standin.calls_to("POST", "/v1/payment_links")
    assert call.json["callback_url"] == "https://ha.example/done"
    assert call.json["callback_method"] == "get"


async def test_find_payment_link(api: RazorpayApi) -> None:
    assert await run(api.find_payment_link, "s-0001") is None
    for reference in ("s-0001", "s-0002", "s-0003"):
        await run(api.create_payment_link, **link_args(reference))
    found = await run(api.find_payment_link, "s-0002")
    assert found is not None
    assert found["reference_id"] == "s-0002"


async def test_create_refused_is_a_request_error(
    api: RazorpayApi, standin: RazorpayStandin
) -> None:
    too_soon = int(time.time()) + 60
    with pytest.raises(RazorpayRequestError, match="15 minutes") as caught:
        await run(api.create_payment_link, **link_args(expire_by=too_soon))
    assert caught.value.status == 400
    with pytest.raises(RazorpayRequestError, match=r"at least INR 1\.00"):
        await run(api.create_payment_link, **link_args(amount=99))
    assert standin.links == {}


async def test_create_timed_out_but_happened_is_recovered(
    api: RazorpayApi, standin: RazorpayStandin
) -> None:
    standin.delay_next("/v1/payment_links", SLOW, method="POST")
    started = time.monotonic()
    link = await run(api.create_payment_link, **link_args())
    assert time.monotonic() - started < SLOW - 1
    assert list(standin.links) == [link["id"]]
    assert len(standin.calls_to("POST", "/v1/payment_links")) == 1
    assert len(standin.calls_to("GET", "/v1/payment_links")) == 1


async def test_create_timed_out_without_effect_is_made_again(
    api: RazorpayApi, standin: RazorpayStandin
) -> None:
    standin.fail_next("/v1/payment_links", 500, method="POST")
    standin.delay_next("/v1/payment_links", SLOW, method="POST")
    link = await run(api.create_payment_link, **link_args())
    assert list(standin.links) == [link["id"]]
    assert len(standin.calls_to("POST", "/v1/payment_links")) == 2


async def test_create_refused_as_duplicate_returns_the_existing_link(
    api: RazorpayApi, standin: RazorpayStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timed-out create lands after the look-up: the repeat is refused as a duplicate."""
    standin.delay_next("/v1/payment_links", SLOW, method="POST")
    real_find = api.find_payment_link
    lookups: list[str] = []

    def find_lagging(reference_id: str) -> dict[str, Any] | None:
        lookups.append(reference_id)
        return None if len(lookups) == 1 else real_find(reference_id)

    monkeypatch.setattr(api, "find_payment_link", find_lagging)
    link = await run(api.create_payment_link, **link_args())
    assert list(standin.links) == [link["id"]]
    assert len(standin.calls_to("POST", "/v1/payment_links")) == 2
    assert lookups == ["s-0001", "s-0001"]


async def test_repeated_call_returns_the_existing_link(
    api: RazorpayApi, standin: RazorpayStandin
) -> None:
    first = await run(api.create_payment_link, **link_args())
    again = await run(api.create_payment_link, **link_args())
    assert again == first
    assert len(standin.links) == 1


async def test_reference_taken_for_another_amount_is_an_error(
    api: RazorpayApi, standin: RazorpayStandin
) -> None:
    await run(api.create_payment_link, **link_args())
    with pytest.raises(RazorpayRequestError, match="another amount"):
        await run(api.create_payment_link, **link_args(amount=5000))
    assert len(standin.links) == 1


async def test_create_timeout_then_refusal_is_raised(
    api: RazorpayApi, standin: RazorpayStandin
) -> None:
    for status in (400, 503):
        standin.fail_next("/v1/payment_links", 500, method="POST")
        standin.delay_next("/v1/payment_links", SLOW, method="POST")
        standin.fail_next("/v1/payment_links", status, method="POST")
        with pytest.raises(RazorpayRequestError) as caught:
            await run(api.create_payment_link, **link_args())
        assert caught.value.status == status
    assert standin.links == {}


async def test_concurrent_calls(api: RazorpayApi, standin: RazorpayStandin) -> None:
    links = await asyncio.gather(
        *(run(api.create_payment_link, **link_args(f"s-{n:04}")) for n in range(8))
    )
    assert len({link["id"] for link in links}) == 8
    assert len(standin.links) == 8


# -- payments and refunds ---------------------------------------------------------------------


async def test_fetch_payment(api: RazorpayApi, standin: RazorpayStandin) -> None:
    paid = await paid_link(api, standin)
    payment = await run(api.fetch_payment, paid.payment_id)
    assert payment["id"] == paid.payment_id
    assert payment["status"] == "captured"
    assert payment["amount"] == 2500
    link = await run(api.fetch_payment_link, paid.link_id)
    assert link["status"] == "paid"
    assert link["payments"][0]["payment_id"] == paid.payment_id


async def test_unknown_id_is_a_request_error(api: RazorpayApi) -> None:
    with pytest.raises(RazorpayRequestError, match="does not exist") as caught:
        await run(api.fetch_payment, "pay_unknown")
    assert caught.value.status == 400
    assert caught.value.description == "The id provided does not exist"


async def test_ids_cannot_address_other_endpoints(
    api: RazorpayApi, standin: RazorpayStandin
) -> None:
    await run(api.create_payment_link, **link_args())
    with pytest.raises(RazorpayRequestError, match="does not exist"):
        await run(api.fetch_payment, "../payment_links")
    # The whole id reached the payment route (quoted), not the payment links list.
    assert standin.calls[-1].path == "/v1/payments/../payment_links"
    assert standin.calls_to("GET", "/v1/payment_links") == []


async def test_refund_is_idempotent(api: RazorpayApi, standin: RazorpayStandin) -> None:
    paid = await paid_link(api, standin)
    first = await run(
        api.refund, paid.payment_id, amount=1000, idempotency_key="s-0001-r1", notes={"s": "1"}
    )
    again = await run(
        api.refund, paid.payment_id, amount=1000, idempotency_key="s-0001-r1", notes={"s": "1"}
    )
    assert again == first
    assert first["id"].startswith("rfnd_")
    assert (first["amount"], first["payment_id"], first["status"]) == (
        1000,
        paid.payment_id,
        "processed",
    )
    assert list(standin.refunds) == [first["id"]]
    assert standin.payments[paid.payment_id]["amount_refunded"] == 1000
    calls = standin.calls_to("POST", f"/v1/payments/{paid.payment_id}/refund")
    assert [call.headers["X-Refund-Idempotency"] for call in calls] == ["s-0001-r1"] * 2
    assert calls[0].json == {"amount": 1000, "speed": "normal", "notes": {"s": "1"}}


async def test_fetch_refund(api: RazorpayApi, standin: RazorpayStandin) -> None:
    standin.refund_status = "pending"
    paid = await paid_link(api, standin)
    refund = await run(api.refund, paid.payment_id, amount=500, idempotency_key="r-f")
    assert (await run(api.fetch_refund, paid.payment_id, refund["id"]))["status"] == "pending"
    standin.settle_refund(refund["id"], "processed")
    assert (await run(api.fetch_refund, paid.payment_id, refund["id"]))["status"] == "processed"
    with pytest.raises(RazorpayRequestError):
        await run(api.fetch_refund, paid.payment_id, "rfnd_unknown")


async def test_refund_over_the_refundable_amount(
    api: RazorpayApi, standin: RazorpayStandin
) -> None:
    paid = await paid_link(api, standin)
    await run(api.refund, paid.payment_id, amount=2000, idempotency_key="r1")
    with pytest.raises(RazorpayRequestError, match="greater than amount captured") as caught:
        await run(api.refund, paid.payment_id, amount=501, idempotency_key="r2")
    assert caught.value.status == 400
    assert len(standin.refunds) == 1
    refund = await run(api.refund, paid.payment_id, amount=500, idempotency_key="r3")
    assert "notes" not in standin.calls[-1].json
    assert refund["amount"] == 500
    assert standin.payments[paid.payment_id]["refund_status"] == "full"


async def test_server_error_is_a_request_error(api: RazorpayApi, standin: RazorpayStandin) -> None:
    standin.fail_next("/v1/payments", 500)
    with pytest.raises(RazorpayRequestError, match="incident has been reported") as caught:
        await run(api.fetch_payment, "pay_x")
    assert caught.value.status == 500


@pytest.mark.parametrize(("status", "message"), [(502, "HTTP 502 Bad Gateway"), (200, "not JSON")])
async def test_answer_that_is_not_json(
    api: RazorpayApi, standin: RazorpayStandin, status: int, message: str
) -> None:
    standin.fail_next("/v1/payments", status, body="<html>proxy says no</html>")
    with pytest.raises(RazorpayRequestError, match=message) as caught:
        await run(api.fetch_payment, "pay_x")
    assert caught.value.status == status


async def test_sdk_errors_are_mapped(api: RazorpayApi, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise BadRequestError("Refused by the SDK")

    monkeypatch.setattr(api._client.payment, "fetch", refuse)
    with pytest.raises(RazorpayRequestError, match="Refused by the SDK") as caught:
        await run(api.fetch_payment, "pay_x")
    assert caught.value.status is None
    assert isinstance(caught.value, RazorpayError)


# -- webhooks built by the stand-in -------------------------------------------------------------


def verified(body: bytes, headers: dict[str, str], secret: str) -> dict[str, Any]:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Razorpay-Signature"], expected)
    assert sign(body, secret) == expected
    data = json.loads(body)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("method", ["upi", "card"])
async def test_payment_webhooks(api: RazorpayApi, standin: RazorpayStandin, method: str) -> None:
    paid = await paid_link(api, standin, method)
    link = standin.links[paid.link_id]
    payment = await run(api.fetch_payment, paid.payment_id)
    hooks = {hook.event: hook for hook in paid.webhooks()}
    assert set(hooks) == {"payment.captured", "order.paid", "payment_link.paid"}
    assert len({hook.event_id for hook in hooks.values()}) == 3
    assert paid.payment_captured() == hooks["payment.captured"]  # a redelivery

    for hook in hooks.values():
        body = verified(hook.body, hook.headers("whsec"), "whsec")
        assert body["event"] == hook.event
        assert body["account_id"] == standin.account_id
        carried = body["payload"]["payment"]["entity"]
        assert carried == payment
        assert carried["method"] == method
        assert (carried["amount"], carried["currency"]) == (2500, "INR")
        assert carried["notes"] == {"bay": "bay-1", "plan": "30m"}
        assert carried["description"] == "#" + paid.link_id.removeprefix("plink_")
        assert carried["order_id"] == paid.order_id

    plink = hooks["payment_link.paid"].payload["payload"]
    assert plink["payment_link"]["entity"]["id"] == paid.link_id
    assert plink["payment_link"]["entity"]["reference_id"] == "s-0001"
    assert plink["payment_link"]["entity"] == link
    # Razorpay's documented quirk: the order inside payment_link.paid lacks its prefix.
    assert "order_" + plink["order"]["entity"]["id"] == paid.order_id
    order = hooks["order.paid"].payload["payload"]["order"]["entity"]
    assert order["id"] == paid.order_id
    assert (order["receipt"], order["amount_paid"], order["status"]) == ("s-0001", 2500, "paid")


async def test_empty_notes_arrive_as_a_list(api: RazorpayApi, standin: RazorpayStandin) -> None:
    link = await run(api.create_payment_link, **link_args(notes={}))
    paid = standin.pay_link(link["id"], amount=100)
    payment = paid.payment_captured().payload["payload"]["payment"]["entity"]
    assert payment["notes"] == []
    assert payment["amount"] == 100


async def test_refund_webhooks(api: RazorpayApi, standin: RazorpayStandin) -> None:
    paid = await paid_link(api, standin)
    standin.refund_status = "pending"
    refund = await run(api.refund, paid.payment_id, amount=2500, idempotency_key="r1")
    assert refund["status"] == "pending"

    failed = standin.settle_refund(refund["id"], "failed")
    body = verified(failed.body, failed.headers("whsec"), "whsec")
    assert body["event"] == "refund.failed"
    assert body["payload"]["refund"]["entity"]["id"] == refund["id"]
    assert body["payload"]["refund"]["entity"]["status"] == "failed"
    assert body["payload"]["payment"]["entity"]["id"] == paid.payment_id
    assert body["payload"]["payment"]["entity"]["amount_refunded"] == 0

    again = await run(api.refund, paid.payment_id, amount=2500, idempotency_key="r2")
    processed = standin.settle_refund(again["id"])
    body = processed.payload
    assert body["event"] == "refund.processed"
    assert body["payload"]["refund"]["entity"]["amount"] == 2500
    assert body["payload"]["payment"]["entity"]["refund_status"] == "full"
    assert processed.event_id != failed.event_id


def test_fixtures_are_found() -> None:
    assert FIXTURES_DIR.is_dir()
    assert load("api/refund_entity__entity.json")["entity"] == "refund"
