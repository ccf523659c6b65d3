"""QuickBooks Online's OAuth2 provider (Intuit): consent page, token endpoint, scopes.

Intuit states each refresh token's lifetime in the token answer (`x_refresh_token_expires_in`,
rolling 100 days) and, asked with a header, what is left of its 5-year limit from the consent
(`x_refresh_token_hard_expires_in`), which no refresh moves: without it, the first sign of
that limit would be the refusal.
"""

from __future__ import annotations

from connectors.oauth import Provider

PROVIDER = Provider(
    authorize_url="https://appcenter.intuit.com/connect/oauth2",
    token_url="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    scopes=("com.intuit.quickbooks.accounting",),
    token_headers=(("x-include-refresh-token-hard-expires-in", "true"),),
)
