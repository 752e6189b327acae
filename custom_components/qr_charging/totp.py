"""The time-based one-time password of a bay's dynamic QR code, as OCPP 2.1 computes it.

Plain Python, no Home Assistant imports; time is passed in. OCPP 2.1 (part 2, use case C25
"ad hoc payment via QR code", the ``WebPaymentsCtrlr`` component) and the Open Charging
whitepaper "Secure Dynamic QR-Codes" with its reference implementation
(OpenChargingCloud/DynamicQRCodes, ``QRCodeTOTPGenerator``) define it:

- interval = floor(unix time in seconds / validity), validity 6 to 3600 seconds;
- message = the interval as 8 bytes, big-endian (as RFC 6238's counter);
- hash = HMAC-SHA256(key = the bay's shared secret as UTF-8, message);
- offset = the low 4 bits of the hash's last byte (RFC 4226's dynamic truncation);
- character i (of ``LENGTH`` = 12) = ``BASE62[hash[(offset + i) % 32] % 62]`` with
  ``BASE62`` = 0-9, a-z, A-Z. Each character is one byte taken modulo 62 (the reference's
  mapping, slightly biased; 12 characters still carry about 70 bits), not a base conversion.

A password is accepted for the current interval and the one before and after it (clock
skew and the time a customer takes to scan): so for between one and two validities.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets

BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
LENGTH = 12
MIN_VALIDITY_S = 6
MAX_VALIDITY_S = 3600
DEFAULT_VALIDITY_S = 60
# OCPP asks for a shared secret of more than 16 characters; token_urlsafe(24) gives 32.
MIN_SECRET_CHARS = 17
_SECRET_BYTES = 24


def new_secret() -> str:
    """A new per-bay shared secret."""
    return secrets.token_urlsafe(_SECRET_BYTES)


def interval(now: float, validity_s: int) -> int:
    """The number of the time interval ``now`` falls in."""
    return math.floor(now) // validity_s


def password(secret: str, number: int, length: int = LENGTH) -> str:
    """The password of one interval."""
    digest = hmac.new(secret.encode(), number.to_bytes(8, "big"), hashlib.sha256).digest()
    offset = digest[-1] & 0x0F
    return "".join(BASE62[digest[(offset + i) % len(digest)] % 62] for i in range(length))


def current(secret: str, validity_s: int, now: float) -> tuple[str, float]:
    """The password now, and the seconds until the next one."""
    number = interval(now, validity_s)
    return password(secret, number), (number + 1) * validity_s - now


def accepts(secret: str, validity_s: int, given: str | None, now: float) -> bool:
    """Whether ``given`` is the password of this interval, the one before or the next."""
    if not given or len(given) != LENGTH or not given.isascii():
        return False
    number = interval(now, validity_s)
    # Every candidate is compared (no early exit), each in constant time.
    matches = [
        hmac.compare_digest(given, password(secret, n)) for n in (number - 1, number, number + 1)
    ]
    return any(matches)
