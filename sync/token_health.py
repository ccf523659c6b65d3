"""What `arsync status` says of a connection's tokens, beyond the status the syncs record.

A sync marks a connection `reconnect_needed` when the provider refuses its refresh token; two
things only show before that: tokens this process cannot read (sealed with another
`ARSYNC_SECRET_KEY`, or with one and none is set now), and a refresh token near the end of
its life. Kept apart from the daemon's jobs so `status` stays quick to start.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from store.crypto import UNREADABLE_TOKENS, SecretBox, SecretKeyError, needs_a_key, unreadable_tokens

# A refresh token this close to its expiry is refreshed by the workers' daily keep-alive.
KEEP_ALIVE_WITHIN = timedelta(days=14)

# `store.connections.ConnectionStatus` values, spelt out: `status` starts without the ORM
NOT_CONNECTED = "not_connected"
RECONNECT_NEEDED = "reconnect_needed"
UNREADABLE = "tokens_unreadable"
EXPIRED = "refresh_expired"


def token_health(
    company_id: str,
    connection: dict,
    box: SecretBox,
    now: datetime,
    *,
    workers: int,
    last_error: str | None = None,
) -> tuple[str, str | None]:
    """The (status, detail) to show for `connection` (its `connections` row) as of `now`.

    A healthy status (`ok`) gains a detail when its refresh token's expiry is near or unknown,
    or its tokens are stored unencrypted; any other status recorded by a sync is shown as
    recorded. `last_error`: the company's last sync's, which tells whether the syncs' key
    opened the tokens when this process has none, or another one.
    """
    status, detail = connection["status"], connection["status_detail"]
    sealed = connection.get("refresh_token")
    if status == NOT_CONNECTED and detail is None:
        return status, f"no tokens stored yet: run `arsync auth connect {company_id}` (or `auth set-tokens`)"
    if status != "ok" or not sealed:
        return status, detail
    syncs_could_not = last_error is not None and last_error.startswith(UNREADABLE_TOKENS)
    if not box.encrypting and needs_a_key(sealed):
        if syncs_could_not:  # nothing syncs, whatever this process could tell: not "ok"
            return UNREADABLE, f"the last sync could not read them: {last_error}"
        # an admin's shell without the key cannot tell: the daemon's may open them
        return status, (
            "the tokens are encrypted at rest and this process has no ARSYNC_SECRET_KEY to check "
            "them with; the last sync's error says whether the syncs' one opens them"
        )
    try:
        box.open(sealed)
    except SecretKeyError as exc:
        return UNREADABLE, unreadable_tokens(company_id, exc)
    if syncs_could_not:
        return UNREADABLE, (
            "this process's ARSYNC_SECRET_KEY opens them, but the last sync's did not: start the "
            "workers with this key (or this one's in ARSYNC_SECRET_KEY_PREVIOUS)"
        )
    notes = [note] if (note := _expiry(company_id, connection, now, workers)) else []
    if not needs_a_key(sealed):  # only `auth set-tokens` warned, once
        notes.append(
            "the tokens are stored unencrypted: `arsync auth rekey` seals them with this process's key"
            if box.encrypting
            else "the tokens are stored unencrypted: set ARSYNC_SECRET_KEY where arsync runs, "
            "then `arsync auth rekey` seals them"
        )
    expired = connection.get("refresh_expires_at") is not None and connection["refresh_expires_at"] <= now
    return (EXPIRED if expired else status), ("; ".join(notes) if notes else detail)


def _expiry(company_id: str, connection: dict, now: datetime, workers: int) -> str | None:
    """What to say of the refresh token's expiry: unknown, past, or near; None when far."""
    expires = connection.get("refresh_expires_at")
    if expires is None:
        return (
            "the refresh token's expiry is unknown, as `auth set-tokens` without "
            "`--refresh-expires-in` stores it: its first refresh learns it"
        )
    if expires <= now:
        reconnect = f"`arsync auth connect {company_id}`"
        return f"the refresh token expired at {expires.isoformat()}: reconnect with {reconnect}"
    if expires - KEEP_ALIVE_WITHIN <= now:
        keeper = (
            "the workers refresh it before then"
            if workers
            else f"no `arsync run` worker is running to refresh it: `arsync sync {company_id}` does"
        )
        limit = (  # a refresh token's end no refresh moves (QuickBooks: 5 years from the consent)
            "if a refresh leaves this date as it is, it is the provider's limit: reconnect before "
            f"then with `arsync auth connect {company_id}`"
        )
        return f"the refresh token expires at {expires.isoformat()}; {keeper}; {limit}"
    return None
