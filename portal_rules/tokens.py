"""Invitation tokens: random, URL-safe, stored only as a hash, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32  # 256 bits of randomness; token_urlsafe encodes them as 43 characters


def new_token() -> str:
    """A fresh URL-safe token carrying `TOKEN_BYTES` random bytes.

    Never starting with "-": `arsync portal accept COMPANY TOKEN` would take such a token
    (one in 64) for an option and fail with a usage error.
    """
    while (token := secrets.token_urlsafe(TOKEN_BYTES)).startswith("-"):
        pass
    return token


def hash_token(token: str) -> str:
    """The SHA-256 hex digest kept in the store instead of the token itself.

    Any string has one: a token sent back holding a lone surrogate (JSON's `"\\ud800"`) is
    no issued token, and must be refused as unknown, not fail to encode.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def tokens_match(a_hash: str, b_hash: str) -> bool:
    """Constant-time comparison of two token hashes."""
    return hmac.compare_digest(a_hash.encode("utf-8"), b_hash.encode("utf-8"))


def invitation_link(portal_url: str, token: str) -> str:
    """`{portal_url}/invite/{token}`, whether or not the portal URL ends with a slash."""
    return f"{portal_url.rstrip('/')}/invite/{token}"
