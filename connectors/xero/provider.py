"""Xero's OAuth2 provider: consent page, token endpoint, scopes.

Xero does not state the refresh token's lifetime in its answer: it is 60 days.
"""

from __future__ import annotations

from datetime import timedelta

from connectors.oauth import Provider

PROVIDER = Provider(
    authorize_url="https://login.xero.com/identity/connect/authorize",
    token_url="https://identity.xero.com/connect/token",
    scopes=("offline_access", "accounting.transactions.read", "accounting.contacts.read"),
    refresh_token_lifetime=timedelta(days=60),
)
