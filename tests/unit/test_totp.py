"""The dynamic QR code's password against OCPP's reference vectors and an independent version."""

from __future__ import annotations

import hmac
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.qr_charging.totp import LENGTH, accepts, current, interval, password

# The reference implementation's tests (OpenChargingCloud/DynamicQRCodes,
# TOTP/CSharp/TOTPSharp_Tests/TOTPTests.cs): secret "secure!Charging!", 2024-05-23 00:23:05 UTC.
REFERENCE_SECRET = "secure!Charging!"
REFERENCE_TIME = datetime(2024, 5, 23, 0, 23, 5, tzinfo=UTC).timestamp()
REFERENCE = {
    # validity: (previous, current, next, seconds left)
    30: ("MdPU0jCm5tXz", "CN63y502maVh", "dI54vnA25m2h", 25),
    60: ("nTdkiuG6yUyg", "XJZr0L1DGKn0", "ft0ONZ62MdMj", 55),
}
# Computed once with this module for a secret like the integration makes (token_urlsafe(24)).
SECRET = "Zq3dHkP0xW8vR2tYbN5mLc7uE1aS9oJf"
FIXED = {
    (0, 60): "yjxLE29B7kcD",
    (1_700_000_000, 60): "gdW7FBSmP6oS",
    (1_700_000_000, 6): "dd3YRf8qAGJ5",
    (1_700_000_000, 3600): "EqdM8Q3SIRFY",
}


def _independent(secret: str, now: float, validity: int) -> str:
    """The same algorithm written differently: struct, an index table, slicing a doubled hash."""
    alphabet = [chr(c) for c in range(48, 58)] + [chr(c) for c in range(97, 123)]
    alphabet += [chr(c) for c in range(65, 91)]
    step = int(now // validity)
    mac = hmac.digest(secret.encode("utf-8"), struct.pack(">Q", step), "sha256")
    start = mac[31] % 16
    doubled = mac + mac
    return "".join(alphabet[b % 62] for b in doubled[start : start + 12])


@pytest.mark.parametrize("validity", sorted(REFERENCE))
def test_the_reference_vectors(validity: int) -> None:
    previous, now, following, left = REFERENCE[validity]
    number = interval(REFERENCE_TIME, validity)

    assert password(REFERENCE_SECRET, number - 1) == previous
    assert current(REFERENCE_SECRET, validity, REFERENCE_TIME) == (now, left)
    assert password(REFERENCE_SECRET, number + 1) == following


def test_fixed_vectors() -> None:
    for (now, validity), expected in FIXED.items():
        assert current(SECRET, validity, now)[0] == expected
        assert _independent(SECRET, now, validity) == expected


@given(
    secret=st.text(alphabet=st.characters(codec="utf-8"), min_size=17, max_size=64),
    now=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    validity=st.integers(min_value=6, max_value=3600),
)
def test_it_agrees_with_an_independent_version(secret: str, now: float, validity: int) -> None:
    code = current(secret, validity, now)[0]
    assert code == _independent(secret, now, validity)
    assert len(code) == LENGTH
    assert code.isalnum()
    assert code.isascii()


def test_accepted_for_the_interval_before_and_after_only() -> None:
    validity = 60
    start = 1_700_000_040.0  # an interval's first second (1_700_000_040 = 28_333_334 * 60)
    assert start % validity == 0
    code = current(SECRET, validity, start)[0]

    for now in (start - validity, start - 0.001, start, start + validity * 2 - 0.001):
        assert accepts(SECRET, validity, code, now), now
    for now in (start - validity - 0.001, start + validity * 2):
        assert not accepts(SECRET, validity, code, now), now
    assert current(SECRET, validity, start - 0.001)[0] != code
    assert current(SECRET, validity, start + validity - 0.001)[0] == code
    assert current(SECRET, validity, start + 1) == (code, validity - 1)


def test_refused_when_not_quite_it() -> None:
    code, _ = current(SECRET, 60, 1_700_000_000)
    for wrong in (None, "", code[:-1], code + "x", code.swapcase(), "é" * LENGTH):
        assert not accepts(SECRET, 60, wrong, 1_700_000_000)
    assert not accepts("another-secret-of-32-characters!", 60, code, 1_700_000_000)
