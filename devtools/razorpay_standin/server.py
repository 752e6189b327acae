"""The stand-in as a server for the demo: checkout pages, webhook delivery, a refunds page.

    python -m devtools.razorpay_standin --port 8765 --state-file .demo/razorpay.json

It serves the same API as in the tests (``standin.RazorpayStandin``) and, around it, what a
person meets at Razorpay:

- ``/pay/<link id>`` (a payment link's ``short_url``): a checkout page with *Pay (test)* and
  *Fail (test)*. Paying makes the payment, its order and the paid link, then sends the
  webhooks Razorpay would send, signed with the webhook secret, one after the other in the
  order ``PaidPayment.webhooks()`` gives; failing sends ``payment.failed``. Only the events the
  webhook subscribes to are sent, as at Razorpay.
- ``/refunds``: every refund made through the API; each new refund is followed by its
  ``refund.processed`` webhook (refunds are processed at once).
- ``/``: the webhook's settings, the payment links, the payments and every delivery (with the
  answer Home Assistant gave; a failed delivery can be sent again).
- ``/dashboard/webhook``: GET or POST (JSON ``url``, ``secret``, ``events``) the webhook, as an
  owner types it into Razorpay's dashboard (the demo sets it after the integration's setup).

Everything is kept in the state file (written after each change), so a restarted demo still
knows the payments that Home Assistant's ledger refers to.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from .fixtures import Webhook
from .standin import PAGE_ROUTE_PREFIX, RazorpayStandin, return_address

_LOGGER = logging.getLogger("razorpay_standin")
MAX_DELIVERIES = 200
DELIVERY_TIMEOUT_S = 15
# Razorpay answers the refund call first and sends the event a moment later.
REFUND_EVENT_DELAY_S = 0.5

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f2f4f8; color: #1b1f29; }
header { background: #0c2651; color: #fff; padding: 14px 24px; font-size: 15px;
         display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; }
header b { font-size: 18px; } header a { color: #9cc2ff; } header span { color: #9fb0cc; }
main { max-width: 980px; margin: 24px auto; padding: 0 16px; }
.card { background: #fff; border-radius: 10px; box-shadow: 0 1px 4px #0002; padding: 24px;
        margin-bottom: 20px; }
.checkout { max-width: 420px; margin: 40px auto; text-align: center; }
.amount { font-size: 40px; font-weight: 700; margin: 8px 0 4px; }
.muted { color: #667; font-size: 14px; }
button { font-size: 17px; border: 0; border-radius: 8px; padding: 12px 20px; margin: 8px;
         cursor: pointer; color: #fff; }
.pay { background: #2b83ea; min-width: 200px; } .fail { background: #b8bcc6; }
.small { font-size: 13px; padding: 4px 10px; margin: 0; background: #2b83ea; }
.banner { background: #fff4d6; border: 1px solid #f0d58c; border-radius: 8px; padding: 10px;
          font-size: 13px; margin-top: 18px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e3e6ec; }
.ok { color: #137333; font-weight: 600; } .bad { color: #b3261e; font-weight: 600; }
code { font-size: 13px; }
"""


def _rupees(paise: int) -> str:
    return f"₹{paise // 100:,}.{paise % 100:02d}"


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else ""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str, *, status: int = 200) -> web.Response:
    text = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        "<header><b>Razorpay stand-in</b><span>test mode</span>"
        "<a href='/'>Dashboard</a><a href='/refunds'>Refunds</a></header>"
        f"<main>{body}</main></body></html>"
    )
    return web.Response(text=text, content_type="text/html", status=status)


class StandinServer:
    """A ``RazorpayStandin`` with pages, webhook delivery and a state file."""

    def __init__(self, standin: RazorpayStandin, state_file: Path | None = None) -> None:
        self.standin = standin
        self.state_file = state_file
        self.webhook: dict[str, Any] = {"url": None, "secret": None, "events": None}
        self.deliveries: list[dict[str, Any]] = []
        self._announced_refunds: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- state --------------------------------------------------------------------------------

    def load(self) -> None:
        """Take back the state file's contents, if there is one for these keys."""
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text(encoding="utf-8"))
        try:
            self.standin.restore(data["standin"])
        except ValueError:
            _LOGGER.warning("%s belongs to other keys; starting empty", self.state_file)
            return
        self.webhook = data.get("webhook", self.webhook)
        self.deliveries = data.get("deliveries", [])
        self._announced_refunds = set(data.get("announced_refunds", []))
        _LOGGER.info(
            "restored %d links, %d payments, %d refunds",
            len(self.standin.links),
            len(self.standin.payments),
            len(self.standin.refunds),
        )

    def save(self) -> None:
        """Write the state file (atomically)."""
        if self.state_file is None:
            return
        data = {
            "standin": self.standin.state(),
            "webhook": self.webhook,
            "deliveries": self.deliveries[-MAX_DELIVERIES:],
            "announced_refunds": sorted(self._announced_refunds),
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(self.state_file)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, port: int) -> None:
        """Listen on 127.0.0.1:``port`` (0: a free one)."""
        self._session = aiohttp.ClientSession()
        await self.standin.start(port, pages=self._add_pages)

    async def stop(self) -> None:
        """Finish pending deliveries (briefly), save, stop listening."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self.save()
        await self.standin.stop()
        if self._session is not None:
            await self._session.close()

    def _add_pages(self, app: web.Application) -> None:
        pages: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
            ("GET", "/", self._index),
            ("GET", "/pay/{id}", self._checkout),
            ("POST", "/pay/{id}", self._pay),
            ("GET", "/refunds", self._refunds),
            ("GET", "/refunds.json", self._refunds_json),
            ("GET", "/dashboard/webhook", self._get_webhook),
            ("POST", "/dashboard/webhook", self._set_webhook),
            ("POST", "/deliveries/{n}/redeliver", self._redeliver),
        ]
        for number, (method, path, handler) in enumerate(pages):
            app.router.add_route(method, path, handler, name=f"{PAGE_ROUTE_PREFIX}p{number}")
        app.on_response_prepare.append(self._after_api_call)  # type: ignore[arg-type]

    async def _after_api_call(self, request: web.Request, response: web.StreamResponse) -> None:
        """Save after each change made through the API; announce new refunds, cancelled links."""
        if not request.path.startswith("/v1/") or request.method == "GET":
            return
        if request.path.endswith("/cancel") and response.status == 200:
            link_id = request.match_info.get("id", "")
            self._spawn(self.deliver(self.standin.link_closed(link_id)))
        if (
            request.path.endswith("/refund")
            and response.status == 200
            and isinstance(response, web.Response)
            and response.body is not None
        ):
            refund = json.loads(bytes(response.body))  # type: ignore[arg-type]
            if refund.get("id") not in self._announced_refunds:
                self._announced_refunds.add(refund["id"])
                self._spawn(self._announce_refund(refund["id"]))
        self.save()

    def _spawn(self, job: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce_refund(self, refund_id: str) -> None:
        await asyncio.sleep(REFUND_EVENT_DELAY_S)
        refund = self.standin.refunds[refund_id]
        if refund["status"] == "processed":
            await self.deliver(self.standin.settle_refund(refund_id, "processed"))
            self.save()

    # -- webhooks -----------------------------------------------------------------------------

    def subscribed(self, event: str) -> bool:
        """Whether the webhook is set and asks for this event."""
        events = self.webhook.get("events")
        return bool(self.webhook.get("url")) and (events is None or event in events)

    async def deliver(self, webhook: Webhook) -> dict[str, Any] | None:
        """POST one event to the webhook, signed; None when it is not subscribed."""
        if not self.subscribed(webhook.event):
            return None
        record: dict[str, Any] = {
            "n": (self.deliveries[-1]["n"] + 1) if self.deliveries else 1,
            "at": time.time(),
            "event": webhook.event,
            "event_id": webhook.event_id,
            "body": webhook.body.decode(),
        }
        await self._send(record)
        self.deliveries.append(record)
        del self.deliveries[:-MAX_DELIVERIES]
        return record

    async def _send(self, record: dict[str, Any]) -> None:
        assert self._session is not None
        webhook = Webhook(record["event"], record["event_id"], record["body"].encode())
        try:
            async with self._session.post(
                str(self.webhook["url"]),
                data=webhook.body,
                headers=webhook.headers(str(self.webhook["secret"])),
                timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S),
            ) as response:
                record["status"] = response.status
                record["answer"] = (await response.text())[:500]
        except (aiohttp.ClientError, TimeoutError) as err:
            record["status"] = None
            record["answer"] = f"not delivered: {type(err).__name__}: {err}"
        _LOGGER.info("%s %s -> %s %s", record["event"], record["event_id"], *_outcome(record))

    # -- pages --------------------------------------------------------------------------------

    def _link_or_404(self, request: web.Request) -> dict[str, Any]:
        link = self.standin.links.get(request.match_info["id"])
        if link is None:
            raise web.HTTPNotFound(text="No such payment link")
        return link

    async def _checkout(self, request: web.Request) -> web.Response:
        link = self._link_or_404(request)
        payable = link["status"] == "created" and not _expired(link)
        state = (
            ""
            if payable
            else f"<p class='bad'>This link is {'expired' if _expired(link) else link['status']}"
            "; it cannot be paid.</p>"
        )
        buttons = (
            f"<form method='post' action='/pay/{_e(link['id'])}'>"
            "<button class='pay' name='action' value='pay'>Pay (test)</button><br>"
            "<button class='fail' name='action' value='fail'>Fail (test)</button></form>"
            if payable
            else ""
        )
        body = (
            "<div class='card checkout'>"
            f"<div class='muted'>Payment request · {_e(link['id'])}</div>"
            f"<h2>{_e(link['description'])}</h2>"
            f"<div class='amount'>{_rupees(int(link['amount']))}</div>"
            f"<div class='muted'>UPI · cards · netbanking (test)</div>{state}{buttons}"
            "<div class='banner'>A local stand-in of Razorpay's checkout: no money moves. "
            "<b>Pay</b> sends Home Assistant the signed webhooks Razorpay would send.</div></div>"
        )
        return _page(f"Pay {_rupees(int(link['amount']))}", body)

    async def _pay(self, request: web.Request) -> web.Response:
        link = self._link_or_404(request)
        form = await request.post()
        action = form.get("action")
        wants_json = "application/json" in request.headers.get("Accept", "")
        if link["status"] != "created" or _expired(link) or action not in ("pay", "fail"):
            problem = "not payable" if action in ("pay", "fail") else "unknown action"
            if wants_json:
                return web.json_response({"error": problem, "status": link["status"]}, status=409)
            return _page("Not payable", f"<div class='card'>Link {problem}.</div>", status=409)
        payment_id: str
        if action == "pay":
            paid = self.standin.pay_link(link["id"])
            payment_id = paid.payment_id
            webhooks = paid.webhooks()
        else:
            failed = self.standin.fail_payment(link["id"])
            payment_id = failed.payload["payload"]["payment"]["entity"]["id"]
            webhooks = [failed]
        self.save()
        _LOGGER.info("link %s: payment %s %s", link["id"], payment_id, action)
        sent = [record for w in webhooks if (record := await self.deliver(w)) is not None]
        self.save()
        # Paid, Razorpay's checkout sends the customer back to the merchant (the session page).
        back = return_address(link, payment_id) if action == "pay" else None
        result = {
            "status": "paid" if action == "pay" else "failed",
            "payment_id": payment_id,
            "link_id": link["id"],
            "deliveries": [_public(record) for record in sent],
            "return_url": back,
        }
        if wants_json:
            return web.json_response(result)
        rows = (
            "".join(f"<tr><td>{_e(r['event'])}</td><td>{_status_html(r)}</td></tr>" for r in sent)
            or "<tr><td colspan=2>Not sent: the webhook does not subscribe to "
            f"{_e(', '.join(w.event for w in webhooks))}.</td></tr>"
        )
        verdict = "Payment successful" if action == "pay" else "Payment failed"
        body = (
            "<div class='card checkout'>"
            f"<h2 class='{'ok' if action == 'pay' else 'bad'}'>{verdict}</h2>"
            f"<div class='amount'>{_rupees(int(link['amount']))}</div>"
            f"<div class='muted'>{_e(payment_id)}</div><br>"
            f"<table><tr><th>webhook sent</th><th>Home Assistant answered</th></tr>{rows}</table>"
            + (f"<p><a class='pay' href='{_e(back)}'>Back to the merchant</a></p>" if back else "")
            + "</div>"
        )
        return _page(verdict, body)

    async def _refunds(self, request: web.Request) -> web.Response:
        refunds = sorted(self.standin.refunds.values(), key=lambda r: r["created_at"], reverse=True)
        rows = (
            "".join(
                f"<tr><td><code>{_e(r['id'])}</code></td><td><code>{_e(r['payment_id'])}</code></td>"
                f"<td>{_rupees(int(r['amount']))}</td><td>{_e(r['status'])}</td>"
                f"<td>{_e(_when(r['created_at']))}</td><td>{_e(r.get('receipt'))}</td></tr>"
                for r in refunds
            )
            or "<tr><td colspan=6>No refunds yet.</td></tr>"
        )
        body = (
            "<div class='card'><h2>Refunds</h2><table><tr><th>refund</th><th>payment</th>"
            f"<th>amount</th><th>status</th><th>created</th><th>receipt</th></tr>{rows}"
            "</table></div>"
        )
        return _page("Refunds", body)

    async def _refunds_json(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.standin.refunds.values()))

    async def _index(self, request: web.Request) -> web.Response:
        links = sorted(self.standin.links.values(), key=lambda x: x["created_at"], reverse=True)
        link_rows = (
            "".join(
                f"<tr><td><a href='/pay/{_e(x['id'])}'><code>{_e(x['id'])}</code></a></td>"
                f"<td>{_e(x['description'])}</td><td>{_rupees(int(x['amount']))}</td>"
                f"<td>{_e('expired' if x['status'] == 'created' and _expired(x) else x['status'])}"
                f"</td><td>{_e(_when(x['created_at']))}</td></tr>"
                for x in links[:50]
            )
            or "<tr><td colspan=5>No payment links yet.</td></tr>"
        )
        delivery_rows = (
            "".join(
                f"<tr><td>{_e(_when(d['at']))}</td><td>{_e(d['event'])}</td>"
                f"<td>{_status_html(d)}</td><td>"
                f"<form method='post' action='/deliveries/{d['n']}/redeliver'>"
                "<button class='small'>send again</button></form></td></tr>"
                for d in reversed(self.deliveries[-50:])
            )
            or "<tr><td colspan=4>Nothing sent yet.</td></tr>"
        )
        events = self.webhook.get("events")
        body = (
            "<div class='card'><h2>Webhook</h2>"
            f"<p>URL: <code>{_e(self.webhook.get('url') or 'not set')}</code><br>"
            f"Events: {_e(', '.join(events) if events else 'all')}<br>"
            f"Key id: <code>{_e(self.standin.key_id)}</code></p></div>"
            "<div class='card'><h2>Payment links</h2><table><tr><th>link</th><th>description</th>"
            f"<th>amount</th><th>status</th><th>created</th></tr>{link_rows}</table></div>"
            "<div class='card'><h2>Webhook deliveries</h2><table><tr><th>sent</th><th>event</th>"
            f"<th>answer</th><th></th></tr>{delivery_rows}</table></div>"
        )
        return _page("Razorpay stand-in", body)

    async def _get_webhook(self, request: web.Request) -> web.Response:
        return web.json_response({**self.webhook, "secret": None})

    async def _set_webhook(self, request: web.Request) -> web.Response:
        data = await request.json()
        if not isinstance(data, dict) or not data.get("url") or not data.get("secret"):
            return web.json_response({"error": "url and secret are required"}, status=400)
        events = data.get("events")
        self.webhook = {
            "url": str(data["url"]),
            "secret": str(data["secret"]),
            "events": [str(e) for e in events] if events else None,
        }
        self.save()
        _LOGGER.info("webhook set: %s (%s)", self.webhook["url"], events or "all events")
        return web.json_response({**self.webhook, "secret": None})

    async def _redeliver(self, request: web.Request) -> web.StreamResponse:
        number = int(request.match_info["n"])
        record = next((d for d in self.deliveries if d["n"] == number), None)
        if record is None or not self.webhook.get("url"):
            raise web.HTTPNotFound(text="No such delivery")
        again = {**record, "n": self.deliveries[-1]["n"] + 1, "at": time.time()}
        await self._send(again)
        self.deliveries.append(again)
        self.save()
        raise web.HTTPSeeOther("/")


def _expired(link: dict[str, Any]) -> bool:
    return bool(link.get("expire_by")) and int(link["expire_by"]) < time.time()


def _outcome(record: dict[str, Any]) -> tuple[str, str]:
    return str(record.get("status")), str(record.get("answer"))


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in ("event", "event_id", "status", "answer")}


def _status_html(record: dict[str, Any]) -> str:
    status = record.get("status")
    css = "ok" if status is not None and 200 <= status < 300 else "bad"
    return (
        f"<span class='{css}'>{_e(status or 'failed')}</span> <code>{_e(record['answer'])}</code>"
    )


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGTERM or SIGINT."""
    standin = RazorpayStandin(args.key_id, args.key_secret)
    server = StandinServer(standin, Path(args.state_file) if args.state_file else None)
    server.load()
    await server.start(args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"Razorpay stand-in listening on {standin.base_url}", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await stop.wait()
    await server.stop()
    print("Razorpay stand-in stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m devtools.razorpay_standin``."""
    parser = argparse.ArgumentParser(prog="razorpay_standin", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--key-id", default="rzp_test_standin")
    parser.add_argument("--key-secret", default="standin_secret")
    parser.add_argument("--state-file", help="keep links, payments and refunds in this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(args))
