"""The pages' rules in plain Python: tokens, language, the session page's stages, texts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from custom_components.qr_charging.pages_model import Stage, choose_language, session_view
from custom_components.qr_charging.pages_tokens import session_of_token, session_token
from custom_components.qr_charging.records import (
    LinkRecord,
    PaymentRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    SessionRecord,
    SessionState,
)

NOW = 1_800_000_000.0
STRINGS = Path(__file__).parents[2] / "custom_components/qr_charging/strings.json"
# hassfest's rules for selector option keys and for any translated text.
KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")


def test_tokens_are_signed() -> None:
    token = session_token("secret-1", "s-01ABC")
    assert session_of_token("secret-1", token) == "s-01ABC"
    assert session_of_token("secret-2", token) is None
    assert session_of_token("secret-1", "s-01ABC") is None
    assert session_of_token("secret-1", token.replace("s-01ABC", "s-01ABD")) is None
    assert session_of_token("secret-1", "é." + token) is None


@pytest.mark.parametrize(
    ("asked", "header", "language"),
    [
        (None, "hi-IN,hi;q=0.9,en;q=0.8", "hi"),
        (None, "en-US,en;q=0.9,hi;q=0.8", "en"),
        (None, "fr-FR,hi;q=0.4", "hi"),
        (None, "hi;q=0.2,en;q=0.9", "en"),
        (None, "hi;q=abc", "en"),
        (None, None, "en"),
        ("hi", "en", "hi"),
        ("de", "hi", "hi"),
    ],
)
def test_language(asked: str | None, header: str | None, language: str) -> None:
    assert choose_language(asked, header) == language


def _link(**changes: object) -> LinkRecord:
    link = LinkRecord("plink_1", "s-1", "bay-1", "p30", 2000, "INR", 1800, int(NOW) + 600, NOW, "u")
    for name, value in changes.items():
        setattr(link, name, value)
    return link


def _paid(state: SessionState) -> tuple[LinkRecord, PaymentRecord, SessionRecord]:
    link = _link(status="paid", payment_id="pay_1")
    payment = PaymentRecord("pay_1", 2000, "INR", NOW, PaymentState.SESSION, session_id="s-1")
    session = SessionRecord("s-1", "bay-1", state, NOW, 1800, 2000, ["pay_1"], until=NOW + 900)
    return link, payment, session


@pytest.mark.parametrize(
    ("state", "stage"),
    [
        (SessionState.PAID, Stage.PAID),
        (SessionState.STARTING, Stage.STARTING),
        (SessionState.ACTIVE, Stage.CHARGING),
        (SessionState.ENDED, Stage.ENDED),
        (SessionState.FAILED, Stage.FAILED),
    ],
)
def test_session_stages(state: SessionState, stage: Stage) -> None:
    view = session_view(*_paid(state), [], NOW)
    assert view.stage is stage
    assert view.paid_paise == 2000
    assert (view.until is not None) is (stage is Stage.CHARGING)


def test_refund_stages_count_only_this_payment() -> None:
    link, payment, session = _paid(SessionState.REFUNDED)
    mine = RefundRecord("r-1", "pay_1", 2000, NOW, RefundState.PENDING, "bay_busy")
    other = RefundRecord("r-2", "pay_2", 500, NOW, RefundState.PROCESSED, "power_cut")
    view = session_view(link, payment, session, [mine, other], NOW)
    assert (view.stage, view.refunded_paise) == (Stage.REFUND_INITIATED, 2000)
    mine.state = RefundState.PROCESSED
    assert session_view(link, payment, session, [mine], NOW).stage is Stage.REFUND_PROCESSED


def test_unpaid_and_mismatched_links() -> None:
    assert session_view(_link(), None, None, [], NOW).stage is Stage.AWAITING
    assert session_view(_link(), None, None, [], NOW + 601).stage is Stage.EXPIRED
    assert session_view(_link(status="expired"), None, None, [], NOW).stage is Stage.EXPIRED
    link = _link(status="paid", payment_id="pay_1")
    odd = PaymentRecord("pay_1", 100, "INR", NOW, PaymentState.ATTENTION)
    assert session_view(link, odd, None, [], NOW).stage is Stage.REVIEW


def test_page_texts_validate_as_hassfest_wants() -> None:
    selectors = json.loads(STRINGS.read_text("utf-8"))["selector"]
    pages = {name: s for name, s in selectors.items() if name.startswith("page_")}
    assert sorted(pages) == [
        "page_bands",
        "page_bay",
        "page_common",
        "page_display",
        "page_poster",
        "page_receipt",
        "page_session",
    ]
    for section in pages.values():
        for key, text in section["options"].items():
            assert KEY.match(key), key
            assert text == text.strip()
            assert "<" not in text
            assert not re.search(r"https?://|www\.", text), key
    stages = set(pages["page_session"]["options"])
    for stage in Stage:
        assert {stage.value, f"{stage.value}_note"} <= stages
