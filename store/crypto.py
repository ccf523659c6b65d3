"""Encryption at rest for OAuth tokens (Fernet), keyed by ARSYNC_SECRET_KEY.

Without a key, values are stored with a `plain:` prefix so that turning a key on later
is detectable; with a key they are stored as `enc:v1:<fernet token>`.

A key is rotated without a reconnect: the earlier keys go in ARSYNC_SECRET_KEY_PREVIOUS
(read, never written with), and `arsync auth rekey` seals every stored token with the
current key (`store.rekey`); then the previous keys can go.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

SEALED = "enc:v1:"  # a value sealed with a key; without one, values are stored "plain:"


class SecretKeyError(Exception):
    """A stored secret cannot be read with the key at hand."""


def needs_a_key(stored: str) -> bool:
    """Whether `stored` was sealed with a key (only a key can tell whether it opens)."""
    return stored.startswith(SEALED)


UNREADABLE_TOKENS = "the stored tokens cannot be read"  # how `unreadable_tokens` begins


def unreadable_tokens(company_id: str, why: SecretKeyError) -> str:
    """What an admin is told of a company's tokens this process's key does not open."""
    return (
        f"{UNREADABLE_TOKENS} ({why}): start arsync with the ARSYNC_SECRET_KEY "
        f"they were stored with, or store new ones (`arsync auth connect {company_id}`)"
    )


class SecretBox:
    """Seals with `key`; opens what `key` or any of `previous` sealed."""

    def __init__(self, key: str | None, previous: Sequence[str] = ()) -> None:
        self._fernet = self._current = None
        self.previous = tuple(previous)
        if key:  # cryptography is loaded only with a key: `arsync status` never needs it
            from cryptography.fernet import Fernet, MultiFernet

            self._current = Fernet(_fernet_key(key))
            self._fernet = MultiFernet([self._current, *(Fernet(_fernet_key(k)) for k in self.previous)])

    @property
    def encrypting(self) -> bool:
        return self._fernet is not None

    def seal(self, plaintext: str) -> str:
        if self._fernet is None:
            return "plain:" + plaintext
        return SEALED + self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, stored: str) -> str:
        if stored.startswith("plain:"):
            return stored.removeprefix("plain:")
        if not needs_a_key(stored):
            raise SecretKeyError("unrecognised stored secret format")
        if self._fernet is None:
            raise SecretKeyError("stored tokens are encrypted; set ARSYNC_SECRET_KEY to read them")
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(stored.removeprefix(SEALED).encode()).decode()
        except InvalidToken:
            tried = " (nor with ARSYNC_SECRET_KEY_PREVIOUS)" if self.previous else ""
            raise SecretKeyError(
                f"stored tokens cannot be decrypted with this ARSYNC_SECRET_KEY{tried}"
            ) from None

    def sealed_with_current(self, stored: str) -> bool:
        """Whether `stored` is sealed with the current key (a previous one's must be resealed)."""
        if self._current is None or not needs_a_key(stored):
            return False
        from cryptography.fernet import InvalidToken

        try:
            self._current.decrypt(stored.removeprefix(SEALED).encode())
        except InvalidToken:
            return False
        return True


def _fernet_key(key: str) -> bytes:
    """Accept a Fernet key as is; derive one from any other passphrase."""
    try:
        if len(base64.urlsafe_b64decode(key.encode())) == 32:
            return key.encode()
    except (ValueError, TypeError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())
