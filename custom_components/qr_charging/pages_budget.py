"""How many requests each client may make of the customer's pages: a token bucket per client.

Plain Python, no Home Assistant imports; time is passed in. The pages are public and each
answer costs Home Assistant's event loop (about a millisecond of templates), so a client that
asks faster than any page of ours polls is answered 429 until its bucket refills. That keeps
the loop free for Razorpay's webhook whatever one client sends.

A client is its address, an IPv6 address's /56 (what an ISP typically delegates to one
customer: a script rotating the /64s of its own prefix still counts as one client). A
request relayed by HA Cloud's cloudhook has no address: every such request counts against one
shared, larger bucket (its abuser can slow the other cloudhook customers' pages, never the
webhook or the pages reached by address).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network


@dataclass(frozen=True, slots=True)
class Allowance:
    """A bucket's refill rate (requests a second) and its size (a burst)."""

    rate_per_s: float
    burst: int


# An open page polls every 5 s: two requests a second are ten open pages behind one address
# (a carrier's NAT shares one among many phones); 60 covers a crowd behind it opening a bay's
# page and tapping Pay at once.
PER_ADDRESS = Allowance(rate_per_s=2.0, burst=60)
# Every customer who reaches the pages through the cloudhook shares this.
THROUGH_CLOUDHOOK = Allowance(rate_per_s=10.0, burst=100)
# An IPv6 client is its /56: a /64 each would let one customer's delegated prefix (256 /64s
# in a /56, 65,536 in a /48) rotate past the buckets remembered.
IPV6_PREFIX = 56
# Buckets remembered; past this the least recently seen is forgotten (it was full or nearly).
MAX_CLIENTS = 4096


def client_of(remote: str | None) -> str | None:
    """The bucket a request counts against: its address or IPv6 /56; None for the cloudhook."""
    if remote is None:
        return None
    try:
        address = ip_address(remote)
    except ValueError:
        return remote[:64]  # not an address (a unix socket's peer): one bucket per name
    if isinstance(address, IPv6Address) and address.ipv4_mapped is None:
        return str(ip_network((address, IPV6_PREFIX), strict=False))
    return str(address)


class Budget:
    """The token buckets of the clients seen lately."""

    def __init__(
        self,
        per_address: Allowance = PER_ADDRESS,
        cloudhook: Allowance = THROUGH_CLOUDHOOK,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._per_address = per_address
        self._cloudhook = cloudhook
        self._max_clients = max_clients
        # client -> (tokens, when counted); least recently seen first.
        self._buckets: OrderedDict[str | None, tuple[float, float]] = OrderedDict()

    def take(self, client: str | None, now: float) -> float:
        """Take one request from ``client``'s bucket: 0 when allowed, else seconds to wait."""
        allowance = self._cloudhook if client is None else self._per_address
        tokens, since = self._buckets.pop(client, (float(allowance.burst), now))
        # A clock that went back refills nothing (and takes nothing back).
        tokens = min(float(allowance.burst), tokens + max(now - since, 0.0) * allowance.rate_per_s)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / allowance.rate_per_s
        self._buckets[client] = (tokens, max(now, since))
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return wait
