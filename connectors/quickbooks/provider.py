"""QuickBooks Online's OAuth2 provider (Intuit): consent page, token endpoint, scopes.

Intuit states each refresh token's lifetime in the token answer (`x_refresh_token_expires_in`).
"""

from __future__ import annotations

from connectors.oauth import Provider

PROVIDER = Provider(
    authorize_url="https://appcenter.intuit.com/connect/oauth2",
    token_url="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    scopes=("com.intuit.quickbooks.accounting",),
)
