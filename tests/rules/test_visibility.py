from __future__ import annotations

import pytest

from portal_rules.visibility import (
    hidden_reason,
    is_live,
    is_sent,
    is_sent_and_live,
    is_visible,
    sent_and_live,
)

from .factories import invoice


@pytest.mark.parametrize(
    ("source_sent", "override", "expected"),
    [
        (True, None, True),
        (False, None, False),
        (False, True, True),
        (True, False, False),
        (True, True, True),
        (False, False, False),
    ],
    ids=[
        "sent-at-source",
        "unsent-at-source",
        "mark-sent-overrides-unsent",
        "mark-unsent-overrides-sent",
        "mark-sent-on-sent",
        "mark-unsent-on-unsent",
    ],
)
def test_is_sent(source_sent: bool, override: bool | None, expected: bool) -> None:
    assert is_sent(source_sent, override) is expected


@pytest.mark.parametrize(
    ("voided", "deleted", "draft", "expected"),
    [
        (False, False, False, True),
        (True, False, False, False),
        (False, True, False, False),
        (False, False, True, False),
    ],
    ids=["live", "voided", "deleted", "draft"],
)
def test_is_live(voided: bool, deleted: bool, draft: bool, expected: bool) -> None:
    assert is_live(voided, deleted, draft) is expected


@pytest.mark.parametrize(
    ("facts", "customer_visible", "reason"),
    [
        (invoice(), True, None),
        (invoice(sent=False), True, "unsent"),
        (invoice(sent=False, override=True), True, None),
        (invoice(sent=True, override=False), True, "unsent"),
        (invoice(balance="0", voided=True), True, "voided"),
        (invoice(voided=True, override=True), True, "voided"),
        (invoice(deleted=True), True, "deleted"),
        (invoice(draft=True), True, "draft"),
        (invoice(), False, "inactive customer"),
        (invoice(sent=False), False, "unsent"),
        (invoice(deleted=True, voided=True, sent=False), False, "deleted"),
    ],
    ids=[
        "sent-live-active-customer",
        "unsent",
        "mark-sent-shows-unsent-invoice",
        "mark-unsent-hides-sent-invoice",
        "quickbooks-void-zero-record",
        "mark-sent-cannot-revive-a-void",
        "deleted",
        "xero-draft-or-submitted",
        "customer-hidden",
        "unsent-reported-before-customer",
        "deleted-reported-first",
    ],
)
def test_visibility(facts, customer_visible: bool, reason: str | None) -> None:
    assert hidden_reason(facts, customer_visible) == reason
    assert is_visible(facts, customer_visible) is (reason is None)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [(invoice(), True), (invoice(sent=False), False), (invoice(voided=True), False)],
    ids=["sent-and-live", "unsent", "voided"],
)
def test_is_sent_and_live_ignores_the_customer(facts, expected: bool) -> None:
    assert is_sent_and_live(facts) is expected


@pytest.mark.parametrize("override", [None, True, False], ids=["no-override", "mark-sent", "mark-unsent"])
@pytest.mark.parametrize("source_sent", [True, False], ids=["sent", "unsent"])
@pytest.mark.parametrize("voided", [False, True], ids=["", "voided"])
@pytest.mark.parametrize("deleted", [False, True], ids=["", "deleted"])
@pytest.mark.parametrize("draft", [False, True], ids=["", "draft"])
def test_sent_and_live_decides_as_hidden_reason(source_sent, override, voided, deleted, draft) -> None:
    facts = invoice(sent=source_sent, override=override, voided=voided, deleted=deleted, draft=draft)
    expected = hidden_reason(facts, customer_visible=True) is None
    assert sent_and_live(source_sent, override, voided, deleted, draft) is expected
    assert is_sent_and_live(facts) is expected
