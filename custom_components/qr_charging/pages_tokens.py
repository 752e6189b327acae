"""The customer pages' tokens: a session page's, its cancel key, a bay page's ticket. Plain Python.

Each is signed with the account's pages secret (HMAC-SHA256), so a page is reached, a link
cancelled or a Pay taken only with what this account handed out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Container

_TOKEN_BYTES = 16
# A bay page's ticket: what its forms carry so that Pay is taken for that long after the page
# was opened with a valid dynamic QR code, and so that a second tap of the same page gets the
# link of the first (the hold is theirs).
TICKET_S = 10 * 60


def _mac(secret: str, session_id: str) -> str:
    digest = hmac.new(secret.encode(), session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:_TOKEN_BYTES]).decode().rstrip("=")


def session_token(secret: str, session_id: str) -> str:
    """The unguessable token of a session page: the session id with its HMAC."""
    return f"{session_id}.{_mac(secret, session_id)}"


def session_of_token(secret: str, token: str) -> str | None:
    """The session id a token was made for, or None for a token not signed by ``secret``."""
    session_id, _, mac = token.rpartition(".")
    if not session_id or len(token) > 100 or not token.isascii():
        return None
    return session_id if hmac.compare_digest(mac, _mac(secret, session_id)) else None


def payers_query(secret: str, session_id: str) -> dict[str, str]:
    """The query of a payment's own page, with the key to cancel (for its maker only)."""
    return {"token": session_token(secret, session_id), "key": cancel_key(secret, session_id)}


def cancel_key(secret: str, session_id: str) -> str:
    """The key that lets a session page cancel its unpaid link.

    Given only to the page that made the link (a link is reused for no other page); the
    page Razorpay sends the payer back to has the token without it.
    """
    return _mac(secret, f"cancel:{session_id}")


def may_cancel(secret: str, session_id: str, key: str | None) -> bool:
    """Whether ``key`` is the cancel key of ``session_id``."""
    if not key or len(key) > 100 or not key.isascii():
        return False
    return hmac.compare_digest(key, cancel_key(secret, session_id))


def page_ticket(secret: str, bay_id: str, nonce: str, now: float) -> str:
    """A signed ticket for one opening of a bay's page (``nonce`` tells pages apart)."""
    issued = int(now)
    return f"{issued}.{nonce}.{_mac(secret, f'ticket:{bay_id}:{issued}:{nonce}')}"


def ticket_nonce(
    secret: str, bay_id: str, ticket: str | None, now: float, holding: Container[str] = ()
) -> str | None:
    """The nonce of a valid ticket for this bay, fresh or ``holding``; None for anything else.

    ``holding`` are the nonces of the pages whose link of the bay is open: such a ticket stays
    its holder's past ``TICKET_S`` for as long as the link is open (a hold outlives 10 min).
    """
    if not ticket or len(ticket) > 100 or not ticket.isascii():
        return None
    issued, _, rest = ticket.partition(".")
    nonce, _, mac = rest.partition(".")
    if not issued.isdigit() or not nonce:
        return None
    if not 0 <= now - int(issued) <= TICKET_S and nonce not in holding:
        return None
    expected = _mac(secret, f"ticket:{bay_id}:{issued}:{nonce}")
    return nonce if hmac.compare_digest(mac, expected) else None
