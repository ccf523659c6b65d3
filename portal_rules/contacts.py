"""A customer's contacts: its email addresses, split, normalized, checked and deduplicated.

QuickBooks keeps several addresses in one `PrimaryEmailAddr` separated by commas or
semicolons; Xero lists `EmailAddress` then `ContactPersons` (with `IncludeInEmails`).
Addresses are compared trimmed and lower-case. A syntactically invalid address is kept
(an admin can see and fix it at the source) but never mailed and never portal-eligible.
The first address is the primary contact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[,;]")
# Dot-atom local part (RFC 5322 atext, no quoting) and a DNS host name with a letter TLD.
# Deliberately conservative: ASCII only, no comments, no IP literals, nothing that could
# smuggle a header (spaces, CR/LF, angle brackets, commas are all outside these classes).
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TLD = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}")


@dataclass(frozen=True, slots=True)
class EmailEntry:
    """One contact of a customer, ready for the `contacts` table."""

    email: str  # trimmed, lower-case
    valid: bool
    position: int  # 0 is the primary contact


def split_emails(field: str | None) -> tuple[str, ...]:
    """The addresses in one source field, trimmed, empty pieces dropped, as spelled."""
    if not field:
        return ()
    return tuple(piece.strip() for piece in _SEPARATORS.split(field) if piece.strip())


def normalize_email(email: str) -> str:
    """The comparison form of an address: trimmed and lower-case."""
    return email.strip().lower()


def is_valid_email(email: str) -> bool:
    """A sound, conservative syntax check: one @, a dot-atom local part, a dotted domain."""
    if len(email) > 254 or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    if not 0 < len(local) <= 64 or _LOCAL.fullmatch(local) is None:
        return False
    labels = domain.split(".")
    if len(labels) < 2 or any(_LABEL.fullmatch(label) is None for label in labels):
        return False
    return _TLD.fullmatch(labels[-1]) is not None


def customer_emails(fields: Iterable[str | None]) -> tuple[EmailEntry, ...]:
    """A customer's contacts from its source fields, in order, first occurrence kept.

    Each field may hold several addresses (QuickBooks); pass Xero's `EmailAddress` then
    each included contact person's address.
    """
    seen: set[str] = set()
    entries: list[EmailEntry] = []
    for field in fields:
        for address in split_emails(field):
            email = normalize_email(address)
            if email in seen:
                continue
            seen.add(email)
            entries.append(EmailEntry(email, is_valid_email(email), len(entries)))
    return tuple(entries)
