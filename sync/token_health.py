"""What `arsync status` says of a connection's tokens, beyond the status the syncs record.

A sync marks a connection `reconnect_needed` when the provider refuses its refresh token; two
things only show before that: tokens this process cannot read (sealed with another
`ARSYNC_SECRET_KEY`, or with one and none is set now), and a refresh token near the end of
its life. Kept apart from the daemon's jobs so `status` stays quick to start.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from store.crypto import SecretBox, SecretKeyError, needs_a_key, unreadable_tokens

# A refresh token this close to its expiry is refreshed by the workers' daily keep-alive.
KEEP_ALIVE_WITHIN = timedelta(days=14)

UNREADABLE = "tokens_unreadable"
EXPIRED = "refresh_expired"


def token_health(
    company_id: str, connection: dict, box: SecretBox, now: datetime, *, workers: int
) -> tuple[str, str | None]:
    """The (status, detail) to show for `connection` (its `connections` row) as of `now`.

    A healthy status (`ok`) gains a detail when its refresh token's expiry is near or unknown;
    any other status recorded by a sync is shown as recorded.
    """
    status, detail = connection["status"], connection["status_detail"]
    sealed = connection.get("refresh_token")
    if status != "ok" or not sealed:
        return status, detail
    if not box.encrypting and needs_a_key(sealed):
        # an admin's shell without the key cannot tell: the daemon's may open them
        return status, (
            "the tokens are encrypted at rest and this process has no ARSYNC_SECRET_KEY to check "
            "them with; the last sync's error says whether the syncs' one opens them"
        )
    try:
        box.open(sealed)
    except SecretKeyError as exc:
        return UNREADABLE, unreadable_tokens(company_id, exc)
    expires = connection.get("refresh_expires_at")
    reconnect = f"`arsync auth connect {company_id}`"
    if expires is None:
        return status, (
            "the refresh token's expiry is unknown, as `auth set-tokens` without "
            "`--refresh-expires-in` stores it: its first refresh learns it"
        )
    if expires <= now:
        return EXPIRED, f"the refresh token expired at {expires.isoformat()}: reconnect with {reconnect}"
    if expires - KEEP_ALIVE_WITHIN <= now:
        keeper = (
            "the workers refresh it before then"
            if workers
            else f"no `arsync run` worker is running to refresh it: `arsync sync {company_id}` does"
        )
        return status, f"the refresh token expires at {expires.isoformat()}; {keeper}"
    if not needs_a_key(sealed):  # only `auth set-tokens` warned, once
        return status, (
            "the tokens are stored unencrypted: set ARSYNC_SECRET_KEY where arsync runs, "
            "and they are sealed at their next refresh"
        )
    return status, detail
