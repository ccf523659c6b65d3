from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal_rules.contacts import (
    EmailEntry,
    customer_emails,
    is_valid_email,
    normalize_email,
    split_emails,
)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("ann@example.com", ("ann@example.com",)),
        ("ann@example.com, Bob@Example.com", ("ann@example.com", "Bob@Example.com")),
        ("ann@example.com;bob@example.com", ("ann@example.com", "bob@example.com")),
        (" a@x.io ; b@y.io,c@z.io ", ("a@x.io", "b@y.io", "c@z.io")),
        ("ann@example.com;; ,", ("ann@example.com",)),
        ("", ()),
        (None, ()),
    ],
    ids=[
        "one-address",
        "two-addresses-comma",
        "two-addresses-semicolon",
        "mixed-separators-and-spaces",
        "empty-pieces-dropped",
        "empty-field",
        "missing-field",
    ],
)
def test_split_emails(field: str | None, expected: tuple[str, ...]) -> None:
    assert split_emails(field) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  Ann@Example.COM ", "ann@example.com"), ("bob@example.com", "bob@example.com")],
    ids=["trimmed-and-lowered", "already-normal"],
)
def test_normalize_email(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("ann@example.com", True),
        ("first.last+billing@mail.example.co.uk", True),
        ("o'hara@example.ie", True),
        ("ap@xn--bcher-kva.example", True),
        ("ap@example.xn--p1ai", True),
        ("ann@example", False),
        ("ann.example.com", False),
        ("ann@@example.com", False),
        ("ann@bob@example.com", False),
        ("@example.com", False),
        ("ann@", False),
        ("ann smith@example.com", False),
        ("ann@example.com\r\nX-Injected: yes", False),
        ("ann@example.com\n", False),
        ("Ann <ann@example.com>", False),
        (".ann@example.com", False),
        ("ann..smith@example.com", False),
        ("ann@-example.com", False),
        ("ann@example..com", False),
        ("ann@example.c", False),
        ("ann@127.0.0.1", False),
        ("renée@example.fr", False),
        ("n/a", False),
        ("a" * 65 + "@example.com", False),
    ],
    ids=[
        "plain",
        "dots-plus-subdomains",
        "apostrophe",
        "punycode-label",
        "punycode-tld",
        "undotted-domain",
        "no-at",
        "double-at",
        "two-ats",
        "empty-local-part",
        "empty-domain",
        "space",
        "header-injection-crlf",
        "trailing-newline",
        "angle-brackets-display-name",
        "leading-dot",
        "double-dot",
        "label-starts-with-hyphen",
        "empty-label",
        "one-letter-tld",
        "ip-address",
        "non-ascii-local-part",
        "placeholder-text",
        "local-part-too-long",
    ],
)
def test_is_valid_email(email: str, valid: bool) -> None:
    assert is_valid_email(email) is valid


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            ["Ann@Example.com, bob@example.com"],
            (EmailEntry("ann@example.com", True, 0), EmailEntry("bob@example.com", True, 1)),
        ),
        (
            ["ann@example.com", "ANN@example.com ", "carol@example.com"],
            (EmailEntry("ann@example.com", True, 0), EmailEntry("carol@example.com", True, 1)),
        ),
        (
            ["not an email; bob@example.com"],
            (EmailEntry("not an email", False, 0), EmailEntry("bob@example.com", True, 1)),
        ),
        ([None, "", "dave@example.com"], (EmailEntry("dave@example.com", True, 0),)),
        ([], ()),
    ],
    ids=[
        "quickbooks-field-with-two-addresses",
        "xero-person-repeating-the-main-address",
        "invalid-address-kept-but-marked",
        "missing-fields-skipped",
        "no-contacts",
    ],
)
def test_customer_emails(fields, expected) -> None:
    assert customer_emails(fields) == expected


@given(st.lists(st.text(alphabet="abAB@.,; ", max_size=20), max_size=5))
def test_customer_emails_are_unique_normalized_and_numbered(fields) -> None:
    entries = customer_emails(fields)
    emails = [entry.email for entry in entries]
    assert len(emails) == len(set(emails))
    assert all(email == normalize_email(email) and email for email in emails)
    assert [entry.position for entry in entries] == list(range(len(entries)))
